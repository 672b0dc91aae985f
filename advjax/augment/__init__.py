"""Pure-functional augmentations: per-example `(key, image[HWC], ...)`, batch with vmap."""
