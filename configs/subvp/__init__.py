"""Song et al.'s sub-VP SDE configs (score_sde's configs/subvp).

score_sde's sub-VP files are copies of its continuous VP ones with the sub-VP
SDE, so they are written with `configs.vp.vp_config(..., sde='subvpsde')`.
"""
