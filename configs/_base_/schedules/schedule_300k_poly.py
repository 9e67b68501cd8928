# Mapillary Vistas recipe: the ADE20K one (schedule_160k_poly.py) over 300k iterations (the original's
# MAX_ITER 300000 at 16 images per iteration, poly lr).
_base_ = ['./schedule_160k_poly.py']
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=300000, by_epoch=False)]
train_cfg = dict(max_iters=300000)
