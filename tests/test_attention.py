"""The from-scratch attention, multi-head attention and pre-norm block equal PyTorch's (outputs and gradients)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esc_course.scratch.attention import (
    MultiHeadAttention,
    TransformerBlock,
    causal_mask,
    scaled_dot_product_attention,
)

TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(1, 1, 1, 4), (2, 3, 5, 8), (3, 1, 7, 5)])
@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_matches_torch(shape, causal):
    torch.manual_seed(0)
    q, k, v = (torch.randn(shape, requires_grad=True) for _ in range(3))
    mine, weights = scaled_dot_product_attention(q, k, v, is_causal=causal)
    ref = F.scaled_dot_product_attention(*(t.detach().clone().requires_grad_() for t in (q, k, v)), is_causal=causal)
    torch.testing.assert_close(mine, ref, **TOL)
    torch.testing.assert_close(weights.sum(-1), torch.ones(shape[:-1]), **TOL)
    if causal:  # nothing looks ahead
        assert torch.all(weights.triu(diagonal=1) == 0)
    qr, kr, vr = (t.detach().clone().requires_grad_() for t in (q, k, v))
    F.scaled_dot_product_attention(qr, kr, vr, is_causal=causal).pow(2).sum().backward()
    mine.pow(2).sum().backward()
    for a, b in ((q, qr), (k, kr), (v, vr)):
        torch.testing.assert_close(a.grad, b.grad, **TOL)


def test_sdpa_masks_match_torch():
    torch.manual_seed(1)
    q, k, v = torch.randn(2, 2, 4, 6), torch.randn(2, 2, 9, 6), torch.randn(2, 2, 9, 3)
    keep = torch.rand(2, 1, 4, 9) > 0.4
    keep[..., 0] = True  # every query keeps one key
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, attn_mask=keep)[0],
                               F.scaled_dot_product_attention(q, k, v, attn_mask=keep), **TOL)
    bias = torch.randn(4, 9)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, attn_mask=bias)[0],
                               F.scaled_dot_product_attention(q, k, v, attn_mask=bias), **TOL)


def test_causal_mask_is_the_lower_triangle():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]


def _copy_mha(embed, heads, fused=False, bias=True):
    ref = nn.MultiheadAttention(embed, heads, batch_first=True, bias=bias)
    mine = MultiHeadAttention(embed, heads, bias=bias, fused=fused)
    mine.load_state_dict(ref.state_dict())
    return mine, ref


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("b,t,s,e,h", [(1, 1, 1, 4, 1), (2, 5, 7, 12, 3), (3, 6, 6, 10, 5)])
def test_multihead_matches_torch(fused, b, t, s, e, h):
    torch.manual_seed(2)
    mine, ref = _copy_mha(e, h, fused)
    query, key = torch.randn(b, t, e, requires_grad=True), torch.randn(b, s, e, requires_grad=True)
    pad = torch.zeros(b, s, dtype=torch.bool)
    pad[0, s // 2 + 1:] = True  # the first sequence is padded at its end
    out, weights = mine(query, key, key, key_padding_mask=pad)
    qr, kr = query.detach().clone().requires_grad_(), key.detach().clone().requires_grad_()
    ref_out, ref_weights = ref(qr, kr, kr, key_padding_mask=pad)
    torch.testing.assert_close(out, ref_out, **TOL)
    if not fused:
        torch.testing.assert_close(weights, ref_weights, **TOL)
    out.pow(2).sum().backward()
    ref_out.pow(2).sum().backward()
    torch.testing.assert_close(query.grad, qr.grad, **TOL)
    torch.testing.assert_close(key.grad, kr.grad, **TOL)
    for (name, p), (_, pr) in zip(mine.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(p.grad, pr.grad, **TOL, msg=name)


@pytest.mark.parametrize("fused", [False, True])
def test_multihead_causal_mask_matches_torch(fused):
    torch.manual_seed(3)
    mine, ref = _copy_mha(8, 2, fused)
    x = torch.randn(2, 5, 8)
    hide = ~causal_mask(5)  # torch's MultiheadAttention: True = not allowed
    torch.testing.assert_close(mine(x, attn_mask=hide)[0], ref(x, x, x, attn_mask=hide)[0], **TOL)
    torch.testing.assert_close(mine(x, is_causal=True)[0], ref(x, x, x, attn_mask=hide)[0], **TOL)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_block_matches_torch_encoder_layer(fused, activation):
    torch.manual_seed(4)
    ref = nn.TransformerEncoderLayer(12, 3, dim_feedforward=20, dropout=0.0, activation=activation,
                                     batch_first=True, norm_first=True)
    mine = TransformerBlock(12, 3, dim_feedforward=20, dropout=0.0, activation=activation, fused=fused)
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(3, 7, 12, requires_grad=True)
    xr = x.detach().clone().requires_grad_()
    hide = ~causal_mask(7)
    out, ref_out = mine(x, src_mask=hide), ref(xr, src_mask=hide)
    torch.testing.assert_close(out, ref_out, **TOL)
    out.sum().backward()
    ref_out.sum().backward()
    torch.testing.assert_close(x.grad, xr.grad, **TOL)
    for (name, p), (_, pr) in zip(mine.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(p.grad, pr.grad, **TOL, msg=name)
    mine.eval(), ref.eval()
    with torch.no_grad():  # eval mode (torch may take its fused fast path): the same numbers
        pad = torch.zeros(3, 7, dtype=torch.bool)
        pad[1, 5:] = True
        torch.testing.assert_close(mine(x, src_key_padding_mask=pad)[~pad], ref(x, src_key_padding_mask=pad)[~pad],
                                   **TOL)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match=r"query must be \(batch, length, embed_dim\)"):
        MultiHeadAttention(4, 2)(torch.randn(5, 4))
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        TransformerBlock(4, 2, activation="tanh")
