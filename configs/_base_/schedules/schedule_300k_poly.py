# Mapillary Vistas recipe: the ADE20K one (schedule_160k_poly.py) over 300k iterations (the original's
# MAX_ITER 300000 at 16 images per iteration, poly lr).
_base_ = ['./schedule_160k_poly.py']
# end=1.0 and val_interval: fractions of train_cfg.max_iters, as in schedule_160k_poly.py (5000 of 300k)
train_cfg = dict(max_iters=300000, val_interval=5000 / 300000)
