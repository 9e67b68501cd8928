# Cityscapes recipe: the ADE20K one (schedule_160k_poly.py) over 90k iterations.
_base_ = ['./schedule_160k_poly.py']
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=90000, by_epoch=False)]
train_cfg = dict(max_iters=90000)
