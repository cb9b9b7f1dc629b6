"""Ground quality enhancement of compressed Mars images (issue 6).

What it is for: turning a downlinked JPEG (or pymars) image into the best image
a geologist can get, on the ground, with MarsQE (semantic-based reference
matching + texture transfer + post-enhancement), MarsQE-lite, and the simpler
AR-CNN / DnCNN enhancers trained on the same data, optionally with the
debiased GAN recipe; inference runs through ONNX Runtime without PyTorch.

    compressed image ──classes (128x128 patches: sand/soil/rock/sky)──┐
                     ──dictionary (N_k = 6 per class, LBP + KL match)─┤
                     ──MarsQE main net (TEM/TFM/SAM) ─ post net (QEM, NLM in class)──▶ enhanced

Modules: ``classes`` (8 -> 4 class mapping, patch classifier), ``dictionary``
(reference dictionary and Eq. 4 matching through pymars.texture), ``networks``
(MarsQE, AR-CNN, DnCNN; PyTorch), ``patches`` (the cached training set),
``training``, ``gan`` (conditional discriminator, L_R, bias triangle),
``quality`` (PSNR-B, SSIM), ``inference`` (whole images, ONNX Runtime),
``export`` and ``cli``. Nothing here imports torch at module level except the
PyTorch-only modules (``networks``, ``training``, ``gan``, ``export``).

Example:
    >>> from pymars.enhance import classes
    >>> classes.CLASS_NAMES
    ('sand', 'soil', 'rock', 'sky')
"""
