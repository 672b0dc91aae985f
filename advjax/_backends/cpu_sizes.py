"""Chunk sizes of the batched loops of ECC and PASS on XLA:CPU.

The portable code steps a whole batch at once (what a GPU or TPU wants). On
CPU a bounded working set is faster: fewer small ops (which XLA:CPU's thread
pool handles poorly) than tiny chunks, and temporaries well below glibc's mmap
threshold (32 MB; larger scratch is mapped and zeroed afresh on every call).
"""

# Pairs per ECC Gauss-Newton step (a small working set; measured best on CPU).
ECC_STEP_CHUNK = 16
# Pairs per step of ECC's first sweep (every pair at the identity, no sampling).
ECC_FIRST_CHUNK = 250
# Pairs per step of PASS's final stage (correlation check, aligned images, SSIM).
PASS_CHUNK = 250
