"""Stage `pretrain`: the training loop, its schedules, augmentation, masks, processes and resumable state.
It never names a method: it calls the hooks of the model the registry builds."""
