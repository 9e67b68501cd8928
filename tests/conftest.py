import os

import pytest
import torch

# Two shared cores: more threads only adds contention.
torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '2')))

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
