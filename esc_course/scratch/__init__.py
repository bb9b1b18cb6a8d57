"""From-scratch teaching versions, each checked against PyTorch in the tests.

autograd (scalar Value), gradcheck, conv (conv2d, max_pool2d), norm (batch/layer/group norm), dropout,
rnn (RNN/LSTM/GRU cells).
"""

from esc_course.scratch.autograd import Value, ValueMLP
from esc_course.scratch.gradcheck import GradcheckReport, gradcheck
from esc_course.scratch.rnn import GRUCell, LSTMCell, RNNCell

__all__ = ["GRUCell", "GradcheckReport", "LSTMCell", "RNNCell", "Value", "ValueMLP", "gradcheck"]
