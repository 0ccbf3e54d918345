import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from resnext_lessons.grouped import block_diagonal_weight, check_groups, grouped_conv2d


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 6))
    c_in = groups * draw(st.integers(1, 4))
    c_out = groups * draw(st.integers(1, 4))
    k = draw(st.sampled_from([1, 3, 5]))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, k // 2))
    size = draw(st.integers(k, 9))
    batch = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    return groups, c_in, c_out, k, stride, padding, size, batch, bias


@settings(max_examples=60, deadline=None)
@given(conv_cases(), st.integers(0, 2**16))
def test_grouped_conv2d_equals_torch_for_every_valid_shape(case, seed):
    groups, c_in, c_out, k, stride, padding, size, batch, use_bias = case
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, c_in, size, size, generator=g)
    w = torch.randn(c_out, c_in // groups, k, k, generator=g)
    b = torch.randn(c_out, generator=g) if use_bias else None
    ours = grouped_conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    reference = F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)
    torch.testing.assert_close(ours, reference)


def test_each_group_sees_only_its_own_channels():
    # Changing the input of group 0 must leave the outputs of group 1 untouched.
    x = torch.randn(1, 4, 5, 5)
    w = torch.randn(6, 2, 3, 3)
    y = grouped_conv2d(x, w, groups=2, padding=1)
    x2 = x.clone()
    x2[:, :2] += 1.0
    y2 = grouped_conv2d(x2, w, groups=2, padding=1)
    torch.testing.assert_close(y[:, 3:], y2[:, 3:])
    assert not torch.allclose(y[:, :3], y2[:, :3])


@settings(max_examples=30, deadline=None)
@given(conv_cases())
def test_block_diagonal_weight_is_the_dense_equivalent(case):
    groups, c_in, c_out, k, stride, padding, size, batch, _ = case
    x = torch.randn(batch, c_in, size, size)
    w = torch.randn(c_out, c_in // groups, k, k)
    dense = block_diagonal_weight(w, groups)
    assert dense.shape == (c_out, c_in, k, k)
    assert int((dense != 0).sum()) == int((w != 0).sum())
    torch.testing.assert_close(
        F.conv2d(x, dense, stride=stride, padding=padding),
        F.conv2d(x, w, stride=stride, padding=padding, groups=groups),
        rtol=1e-4, atol=1e-4,
    )


def test_channels_not_divisible_by_groups_is_a_clear_error():
    x = torch.randn(1, 6, 8, 8)
    w = torch.randn(8, 1, 3, 3)
    with pytest.raises(ValueError, match=r"groups=4 does not divide the 6 input channels.*\[1, 2\]\.$"):
        grouped_conv2d(x, w, groups=4)


def test_suggested_groups_divide_both_sides():
    with pytest.raises(ValueError, match=r"groups=3 does not divide the 8 input channels.*: \[1, 2, 4\]\.$"):
        check_groups(8, 12, 3)


def test_output_channels_not_divisible_by_groups_is_a_clear_error():
    with pytest.raises(ValueError, match=r"groups=2 does not divide the 5 output channels"):
        grouped_conv2d(torch.randn(1, 4, 8, 8), torch.randn(5, 2, 3, 3), groups=2)


def test_weight_that_disagrees_with_input_is_a_clear_error():
    x = torch.randn(1, 8, 8, 8)
    w = torch.randn(8, 4, 3, 3)  # made for groups=2, used with groups=4
    with pytest.raises(ValueError, match=r"groups=4.*expects 16 input channels, but x has 8"):
        grouped_conv2d(x, w, groups=4)


@pytest.mark.parametrize("groups", [0, -1, 1.5, True])
def test_groups_must_be_a_positive_integer(groups):
    with pytest.raises(ValueError, match="groups"):
        check_groups(4, 4, groups)


def test_wrong_ranks_and_bias_are_clear_errors():
    w = torch.randn(4, 2, 3, 3)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        grouped_conv2d(torch.randn(4, 8, 8), w, groups=2)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\).*groups=2"):
        grouped_conv2d(torch.randn(1, 4, 8, 8), w, torch.randn(3), groups=2)
