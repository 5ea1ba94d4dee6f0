"""Image data, feature network and image models for the paper's MNIST experiments."""
