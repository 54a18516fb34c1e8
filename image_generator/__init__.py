"""Region replacement for the replacement methods (thesis §4.2 D, §4.3 E, counterexamples).

* ``base``: the ``Generator`` contract (``replace(*, images, masks, seed, donors)``; pixels
  outside the mask unchanged, exactly), ``variants`` (several checked fills per image),
  ``in_mask_diff``, ``diversity``, ``seed_for``;
* ``registry``: ``GENERATORS`` and ``get(name, **params)``;
* ``crop`` (crop_replace), ``opencv_inpaint`` (telea, ns), ``noise``, ``learned`` (the
  gated-conv U-Net trained by ``train_inpainter``), ``user_model`` (adapter for any
  Keras inpainting model of the documented signature);
* CLIs: ``train_inpainter``, ``preview``, ``evaluate``.
"""
