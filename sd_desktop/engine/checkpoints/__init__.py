"""Files to tensors: the three layouts users have, read without trusting them, and the
architecture read from their shapes."""
