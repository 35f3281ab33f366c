"""An image root seen safely from outside: confined access, walking, writing, host copies."""
