"""embedrec training container: trains LightGCN / two-tower models and publishes serving artifacts."""
