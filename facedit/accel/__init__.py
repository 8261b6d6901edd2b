"""Ways to run the FacEDiT network faster without changing what it computes: oneDNN's fused bfloat16 linears
(`fused`) and an opt-in `torch.compile` with an eager fallback (`compiling`)."""
