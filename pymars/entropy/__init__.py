"""Integer probability tables: how float densities become the CDFs the C++ coder uses."""
