"""Rate-distortion evaluation of pymars and the classic codecs (protocol `mars-rd-1`).

The protocol is ``../shared/EVALUATION.md``; this package implements its
sections 3 to 5, and :mod:`pymars.evaluation.protocol` its sections 1 and 2 (which
tiles)::

    dev_tiles(group)                         pymars.evaluation.protocol
      -> code every tile at every quality    classic   (codec registry, settings, byte counts, timing)
      -> score each decoded tile             metrics   (PSNR, MS-SSIM)
      -> mean curves, BD-rate, BD-PSNR       bdrate    (bjontegaard 1.3.0, PCHIP)
    bench/rd_classic.py runs the whole chain and writes bench/results/*.json

Nothing here changes pixels beyond what a codec does, and nothing here is
tuned: grids and settings are part of the protocol, so a change to them is a
change of protocol, not of this package.

Example:
    >>> from pymars.evaluation import metrics, classic
    >>> from pymars.data.synthetic import mars_like_scene
    >>> tile = mars_like_scene(176, 176, seed=0)
    >>> coded = classic.jpeg420(tile, 90)
    >>> metrics.psnr(tile, coded.decoded) > 30, metrics.ms_ssim(tile, coded.decoded) > 0.95
    (True, True)
"""
