"""What the graph engine, the quantization analysis and the server all need from onnxruntime and numpy files.

One implementation each: sessions and their errors (``session``), .npy/.npz reading (``npy``), a model's
inputs and random values for them (``inputs``), and the error between two runs' outputs (``compare``).
It imports neither the server nor the view; its errors (``errors``) carry a code and a message that each
caller turns into its own (EditError, QuantError, an HTTP answer).
"""
