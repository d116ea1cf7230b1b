"""Pruning: the Strategy interface, group collection, budget selection, the group-Lasso
regularizer, masks and the dense → regularize → select → fine-tune pipeline."""
