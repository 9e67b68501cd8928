import os

import pytest
import torch
from mmengine.registry import init_default_scope

# Two shared cores: more threads only adds contention.
torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '2')))

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')


@pytest.fixture(autouse=True)
def _mmdet_default_scope():
    """Each test starts in mmdet's scope; a test that needs mmseg's switches itself (no leaking between tests)."""
    init_default_scope('mmdet')
    yield
