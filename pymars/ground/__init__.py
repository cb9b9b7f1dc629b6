"""Ground segment: decoding pymars files back to images (entropy decoding in C++, synthesis in ONNX Runtime or PyTorch)."""
