"""The base codec as a model family of the training engine (PyTorch).

* :mod:`network`: g_a, h_a, h_s (integer), g_s and the rate levels (``BaseCodec``);
* :mod:`entropy_model`, :mod:`integer`, :mod:`layers`, :mod:`estimate`: its parts;
* :mod:`loop`: ``pymars train`` (the codec's step on :mod:`pymars.train.engine`);
* :mod:`wavelet_priors`: the trained starting probabilities of the wavelet coder;
* :mod:`torch_backend`: a bundle's PyTorch model and the ``"torch"`` synthesis plug-in.
"""
