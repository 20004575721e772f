-- Stitching runs short, selective statements: JIT compilation costs more than it saves here.
SET LOCAL jit = off;
