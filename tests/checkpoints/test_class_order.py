"""Class rows of converted weights: dataset file order -> things first (m2f_mm/checkpoints/class_order.py)."""
import json

import pytest
import torch
import torch.nn as nn

from m2f_mm.checkpoints import categories_of, reorder_class_rows, things_first_order

# Cityscapes' panoptic categories in train-id order: 11 stuff classes, then 8 things.
CITYSCAPES = [dict(id=i, name=f'c{i}', isthing=int(i >= 11)) for i in range(19)]


def test_order_by_hand():
    cats = [dict(name='wall', isthing=0), dict(name='bed', isthing=1), dict(name='floor', isthing=0),
            dict(name='cabinet', isthing=1), dict(name='person')]  # no isthing: a thing, as in instance files
    assert things_first_order(cats) == [1, 3, 4, 0, 2]
    assert things_first_order(CITYSCAPES) == list(range(11, 19)) + list(range(11))
    things_already_first = [dict(isthing=1), dict(isthing=1), dict(isthing=0)]
    assert things_first_order(things_already_first) == [0, 1, 2]


@pytest.mark.parametrize('prefix', ['panoptic_head.', 'decode_head.'])
def test_reordered_classifier_gives_the_same_scores_under_the_new_labels(prefix):
    torch.manual_seed(0)
    classifier = nn.Linear(8, 19 + 1)
    state = {prefix + 'class_embed.weight': classifier.weight.detach(),
             prefix + 'class_embed.bias': classifier.bias.detach(), 'backbone.x': torch.ones(2)}
    order = things_first_order(CITYSCAPES)
    out = reorder_class_rows(state, order, prefix=prefix)

    moved = nn.Linear(8, 20)
    moved.load_state_dict({'weight': out[prefix + 'class_embed.weight'], 'bias': out[prefix + 'class_embed.bias']})
    queries = torch.randn(5, 8)
    before, after = classifier(queries), moved(queries)
    for label, file_index in enumerate(order):  # label 0 is now 'person' (train id 11)
        assert torch.equal(after[:, label], before[:, file_index])
    assert torch.equal(after[:, 19], before[:, 19])  # no-object row stays last
    assert out['backbone.x'] is state['backbone.x']
    assert torch.equal(state[prefix + 'class_embed.weight'], classifier.weight)  # input untouched


def test_wrong_category_count_and_missing_layer_are_named(tmp_path):
    state = {'panoptic_head.class_embed.weight': torch.zeros(20, 4), 'panoptic_head.class_embed.bias': torch.zeros(20)}
    with pytest.raises(ValueError, match='has 18 categories but the checkpoint has 19 classes'):
        reorder_class_rows(state, list(range(18)), prefix='panoptic_head.')
    with pytest.raises(KeyError, match='decode_head.class_embed.weight'):
        reorder_class_rows(state, list(range(19)), prefix='decode_head.')
    bad = tmp_path / 'list.json'
    bad.write_text('[]')
    with pytest.raises(ValueError, match='no "categories"'):
        categories_of(str(bad))
    good = tmp_path / 'pan.json'
    good.write_text(json.dumps(dict(images=[], annotations=[], categories=CITYSCAPES)))
    assert categories_of(str(good)) == CITYSCAPES
