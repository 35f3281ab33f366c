"""Ansible's way into a build step's container: the connection plugin
`acigen_runc` (acigen_runc.py), loaded by ansible-playbook from this
directory (ANSIBLE_CONNECTION_PLUGINS); see chroot_run/ansible_step.py."""
