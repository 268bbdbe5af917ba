"""The engine: checkpoints in, pixels out. Torch only; nothing here imports Qt.

The subpackages follow the order in which a picture is made:

1. ``checkpoints``: files -> tensors, never executing code nor holding a model twice.
   ``checkpoint`` opens a file or folder; ``safetensors_header``, ``pickle_checkpoint``
   and ``diffusers_folder`` read the three layouts; ``keymap`` renames diffusers keys to
   the LDM names our modules use; ``detect`` reads the architecture from tensor shapes
   alone (no YAML) and refuses SDXL / SD 2.x clearly; ``lazy_weights`` converts each
   tensor once as it is adopted.
2. ``networks``: ``config`` (the architecture as data), ``unet``, ``vae`` and
   ``text_encoder`` (transformers' CLIP); attribute names mirror checkpoint keys.
3. ``text``: prompt -> embeddings: ``tokenizer``, ``prompt_parser`` (A1111 syntax) and
   ``conditioning`` (77-token chunks, weights, clip skip).
4. ``sampling``: noise -> latents: ``schedules`` and ``samplers`` (one small function per
   sampler over a denoiser, matching diffusers' schedulers).
5. Here: ``pipeline.generate`` runs a ``request.GenerationRequest`` on the
   ``StableDiffusionModel`` that ``model.load_model`` gives; ``previews`` turns
   intermediate latents into pictures; ``image_ops`` does the pixel-side work (resizing,
   masks, blur, paste-back); ``devices``, ``optimize``, ``offload``, ``threads`` and
   ``memory`` fit the work to the hardware.

Every expected failure is an ``errors.EngineError`` whose text is shown to the user.
"""
