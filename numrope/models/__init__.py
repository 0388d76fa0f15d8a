"""Model configurations: reading and writing the RoPE of real models.

* :mod:`numrope.models.hf` -- Hugging Face ``config.json`` files (transformers 4.x and 5.x);
* :mod:`numrope.models.families` -- what each model type implies beyond its config keys.

:meth:`numrope.RopeConfig.from_hf` and :meth:`numrope.RopeConfig.to_hf` are the entry points.
"""
