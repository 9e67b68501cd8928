# Cityscapes recipe: the ADE20K one (schedule_160k_poly.py) over 90k iterations.
_base_ = ['./schedule_160k_poly.py']
# end=1.0 and val_interval: fractions of train_cfg.max_iters, as in schedule_160k_poly.py (5000 of 90k)
train_cfg = dict(max_iters=90000, val_interval=5000 / 90000)
