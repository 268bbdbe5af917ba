"""The engine: checkpoints in, pixels out. Torch only; nothing here imports Qt.

Read it in the order a picture is made:

1. Files -> tensors (never executing code, never holding a model twice):
   ``checkpoint`` opens a file or folder; ``safetensors_header``,
   ``pickle_checkpoint`` and ``diffusers_folder`` read the three layouts;
   ``keymap`` renames diffusers keys to the LDM names our modules use;
   ``lazy_weights`` converts each tensor once as it is adopted.
2. Shapes -> architecture: ``detect`` reads a ``config.ModelConfig`` from tensor
   shapes alone (no YAML), refusing SDXL / SD 2.x with a clear message.
3. Networks: ``unet``, ``vae`` and ``text_encoder`` (transformers' CLIP),
   whose attribute names mirror the checkpoint keys.
4. Prompt -> embeddings: ``tokenizer``, ``prompt_parser`` (A1111 syntax) and
   ``conditioning`` (77-token chunks, weights, clip skip).
5. Noise -> latents: ``schedules`` and ``samplers`` (one small function per
   sampler over a denoiser, matching diffusers' schedulers).
6. ``pipeline.generate`` ties it together for a ``request.GenerationRequest``;
   ``model.load_model`` gives the ``StableDiffusionModel`` it runs on;
   ``previews`` turns intermediate latents into pictures; ``image_ops`` does
   the pixel-side work (resizing, masks, blur, paste-back).
7. Hardware: ``devices`` (device and dtype choice), ``optimize`` (channels-last,
   optional compile), ``offload`` (small GPUs), ``threads``, ``memory``.

Every expected failure is an ``errors.EngineError`` whose text is shown to the user.
"""
