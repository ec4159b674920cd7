"""Registry of measurable systems. To add one: write a module with a System subclass
(see base.py) and list it here."""
from .meshfwd import Meshfwd
from .meshfwd_wg_quick import MeshfwdWgQuick
from .nebula import Nebula
from .tinc import Tinc
from .veth import Veth
from .wireguard_go import WireguardGo

SYSTEMS = {cls.name: cls for cls in (Meshfwd, MeshfwdWgQuick, Veth, WireguardGo, Nebula, Tinc)}
ORDER = ["meshfwd", "meshfwd-wg-quick", "veth", "wireguard-go", "nebula", "tinc"]
