"""The seed's topology on one machine: supervisord runs HAProxy and two
gunicorn/gevent app nodes. ``render`` writes its config files from the
templates in etc/; ``instance.Topology`` starts, inspects and stops one."""
