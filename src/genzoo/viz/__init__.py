"""Pictures: sample grids, scatter plots, latent manifolds."""
