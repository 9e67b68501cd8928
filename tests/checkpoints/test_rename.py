"""The model's head prefixes: one constant, and the subset the converters rename."""
from m2f_mm.checkpoints.rename import FUSION_HEAD_PREFIX, HEAD_PREFIXES, WEIGHT_HEAD_PREFIXES, head_prefix_of


def test_weight_heads_are_the_heads_less_the_fusion_head():
    assert FUSION_HEAD_PREFIX in HEAD_PREFIXES
    assert WEIGHT_HEAD_PREFIXES == ('panoptic_head.', 'decode_head.')


def test_head_prefix_of_a_state_dict():
    assert head_prefix_of(['backbone.w', 'decode_head.class_embed.weight']) == 'decode_head.'
    assert head_prefix_of(['decode_head.a', 'panoptic_head.b']) == 'panoptic_head.'  # the order of the constant
    assert head_prefix_of(['panoptic_fusion_head.x']) == head_prefix_of([]) == 'panoptic_head.'
