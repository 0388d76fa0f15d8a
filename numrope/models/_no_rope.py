"""Model types whose transformers 5.24 modeling code has no rotary embedding: no RoPE to read.

:meth:`numrope.RopeConfig.from_hf` refuses a language model of one of these types rather than read
its config as plain RoPE. Written by ``scripts/model_table.py --no-rope`` from transformers 5.24
(``CONFIG_MAPPING_NAMES`` whose ``modeling_<module>.py`` defines no ``*RotaryEmbedding`` class);
``tests/test_model_sweep.py`` checks the list against the installed transformers. Composite models
(LLaVA, PaliGemma, ...) are here too: their language model, in ``text_config``, is read instead.
"""

NO_ROPE: frozenset = frozenset(
    """
    aimv2 aimv2_text_model aimv2_vision_model albert align align_text_model align_vision_model altclip
    altclip_text_model altclip_vision_model audio-spectrogram-transformer audioflamingo3 audioflamingo3_encoder
    autoformer aya_vision bark bart beit bert bert-generation big_bird bigbird_pegasus biogpt bit blenderbot
    blenderbot-small blip blip-2 blip_2_qformer blip_2_vision_model blip_text_model blip_vision_model bloom
    bridgetower bridgetower_text_model bridgetower_vision_model bros camembert canary canary_decoder canine
    chinese_clip chinese_clip_text_model chinese_clip_vision_model chmv2 clap clap_audio_model clap_text_model clip
    clip_text_model clip_vision_model clipseg clipseg_text_model clipseg_vision_model clvp clvp_decoder clvp_encoder
    cohere2_vision cohere_asr colmodernvbert colpali colqwen2 conditional_detr convbert convnext convnextv2
    cosmos3_omni cpmant ctrl cvt d_fine dab-detr dac deberta deberta-v2 decision_transformer deepseek_vl
    deepseek_vl_hybrid deformable_detr deimv2 deit depth_anything depth_pro detr dinat dinov2 dinov2_with_registers
    dinov3_convnext dinov3_vit distilbert dpr dpt edgetam edgetam_mask_decoder edgetam_prompt_encoder
    edgetam_vision_model efficientnet electra encodec encoder-decoder eomt ernie falcon_mamba fast_vlm
    fastspeech2_conformer fastspeech2_conformer_hifigan fastspeech2_conformer_with_hifigan flaubert flava
    flava_image_codebook flava_image_model flava_multimodal_model flava_text_model florence2 florence_vision fnet
    focalnet fsmt fun_asr_nano fun_asr_nano_encoder funnel fuyu gemma4_assistant gemma4_unified_assistant git
    git_vision_model glm46v glpn got_ocr2 got_ocr2_vision gpt2 gpt_bigcode gpt_neo granite_speech
    granite_speech5_ctc granite_speech5_encoder granite_speech_encoder granite_speech_plus
    granite_speech_plus_encoder grounding-dino groupvit groupvit_text_model groupvit_vision_model hgnet_v2 hiera
    higgs_audio_v2_tokenizer hubert hyperclovax_vision_v2 ibert idefics2 idefics2_perceiver idefics2_vision idefics3
    idefics3_vision ijepa imagegpt informer inkling2_loop inkling2_loop_text inkling_audio inkling_mm_model
    inkling_text inkling_vision instructblip instructblip_qformer instructblip_vision_model instructblipvideo
    instructblipvideo_qformer instructblipvideo_vision_model internvl internvl_vision jamba janus janus_vision_model
    janus_vqgan jev kimi_linear kosmos-2 kosmos-2.5 kosmos_2_5_text_model kosmos_2_5_vision_model
    kosmos_2_text_model kosmos_2_vision_model layoutlm layoutlmv2 layoutlmv3 led levit lfm2_vl lightglue lighton_ocr
    lilt llava llava_next llava_next_video llava_onevision longformer longt5 luke lw_detr lw_detr_vit lxmert m2m_100
    mamba mamba2 marian markuplm mask2former maskformer maskformer-swin mbart megatron-bert metaclip_2
    metaclip_2_text_model metaclip_2_vision_model mgp-str minicpm_ocr minicpm_ocr_vision minicpmv4_6
    minicpmv4_6_vision minicpmv4_7 minicpmv4_7_vision mistral3 mm-grounding-dino mobilebert mobilenet_v1
    mobilenet_v2 mobilevit mobilevitv2 modernvbert moss_transcribe_diarize moss_transcribe_diarize_audio mpnet mpt
    mra mt5 musicgen musicgen_decoder musicgen_melody musicgen_melody_decoder mvp nemotron3_5_asr
    nemotron_asr_streaming nemotron_asr_streaming_encoder nemotron_h nemotron_h_omni nllb-moe nystromformer
    omdet-turbo omniasr omniasr_audio omniasr_ctc oneformer openai-gpt opt ovis2 ovis2_vision owlv2 owlv2_text_model
    owlv2_vision_model owlvit owlvit_text_model owlvit_vision_model paligemma parakeet_ctc parakeet_encoder
    parakeet_rnnt parakeet_tdt patchtsmixer patchtst pegasus pegasus_x perceiver perception_lm pi0 pix2struct
    pix2struct_text_model pix2struct_vision_model pixio plbart poolformer pop2piano pp_doclayout_v2 pp_doclayout_v3
    pp_doclayout_v4 pp_formulanet pp_formulanet_text pp_formulanet_vision pp_lcnet pp_lcnet_v3 pp_lcnet_v4
    pp_ocrv5_mobile_det pp_ocrv5_mobile_rec pp_ocrv5_server_det pp_ocrv5_server_rec pp_ocrv6_medium_det
    pp_ocrv6_small_det pp_ocrv6_small_rec pp_ocrv6_tiny_rec prompt_depth_anything prophetnet pvt pvt_v2 qianfan_ocr
    qianfan_ocr_vision qwen2_audio qwen2_audio_encoder qwen3_asr qwen3_asr_encoder radio rag reformer regnet rembert
    resnet rf_detr rf_detr_dinov2 roberta roberta-prelayernorm roc_bert roformer rt_detr rt_detr_resnet rt_detr_v2
    rwkv sam sam2 sam2_hiera_det_model sam2_mask_decoder sam2_prompt_encoder sam2_vision_model sam3_lite_text
    sam3_lite_text_detr_decoder sam3_lite_text_detr_encoder sam3_lite_text_geometry_encoder
    sam3_lite_text_mask_decoder sam3_lite_text_text_model sam3_tracker sam3_tracker_mask_decoder
    sam3_tracker_prompt_encoder sam3_video sam_hq sam_hq_mask_decoder sam_hq_prompt_encoder sam_hq_vision_model
    sam_mask_decoder sam_prompt_encoder sam_vision_model sapiens2 sapiens2_head seamless_m4t seamless_m4t_v2
    segformer seggpt sew sew-d shieldgemma2 siglip siglip2 siglip2_text_model siglip2_vision_model siglip_text_model
    siglip_vision_model slanet slanext slanext_vision smolvlm smolvlm_vision speech-encoder-decoder speech_to_text
    speecht5 speecht5_hifigan splinter squeezebert superglue superpoint swiftformer swin swin2sr swinv2
    switch_transformers t5 table-transformer tapas textnet time_series_transformer timesfm timesformer timm_backbone
    timm_wrapper tipsv2 tipsv2_dpt tipsv2_text_model tipsv2_vision_model trocr tvp udop ultravbert umt5 unispeech
    unispeech-sat univnet upernet uvdoc uvdoc_backbone vibevoice vibevoice_acoustic_tokenizer
    vibevoice_acoustic_tokenizer_decoder vibevoice_acoustic_tokenizer_encoder vibevoice_asr vibevoice_diffusion
    video_llava videomae videomt videoprism videoprism_text_model videoprism_vision_model vilt vipllava
    vision-encoder-decoder vision-text-dual-encoder visual_bert vit vit_mae vit_msn vitdet vitmatte vitpose
    vitpose_backbone vits vivit vjepa2 voxtral voxtral_encoder wav2vec2 wav2vec2-bert wav2vec2-conformer wavlm
    wavtokenizer wavtokenizer_encoder whisper xclip xclip_text_model xclip_vision_model xcodec xglm xlm xlm-roberta
    xlm-roberta-xl xlnet xlstm xmod yolos yoso zamba zoedepth
    """.split()
)
