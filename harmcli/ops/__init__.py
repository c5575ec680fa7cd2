"""Pure operations on images and adjustments: no models, no files, no CLI."""
