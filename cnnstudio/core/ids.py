"""What can name a node or a group, and the size limits every graph file is held to.

An id becomes a submodule attribute of the built torch model (and a key of its weights), so
it must be a Python identifier-like name that is not one of `torch.nn.Module`'s attributes.
"""

from __future__ import annotations

import re
from typing import Any

from cnnstudio.core.errors import InvalidIdError, show_value

MAX_ID_LENGTH = 100
# Far above any real network (the largest templates have ~100 nodes); a file with more is
# refused before any node is built, so a hostile 10⁶-node file costs one JSON parse only.
MAX_NODES = 100_000
# Files refuse positions beyond ±1e9 (nothing real lies out there), so edits
# clamp to just inside: a far paste or move must never make a file that cannot reopen.
MAX_POS = 1e9
ID_PATTERN = re.compile(r"^[^\W\d][\w-]*$")
# Public attributes of torch.nn.Module: a node id becomes a submodule attribute of that name.
RESERVED_IDS = frozenset("""
T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double
dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule
half ipu load_state_dict modules mtia named_buffers named_children named_modules named_parameters
parameters register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict
to to_empty train training type xpu zero_grad output_id input_id input_shape node_ids module_for
forward_all
""".split())

def check_id(node_id: Any) -> str:
    """Return `node_id` if it can name a node; raise InvalidIdError otherwise."""
    if not isinstance(node_id, str) or not node_id:
        raise InvalidIdError("a node id must be a non-empty string, got"
                             f" {show_value(node_id, python=True)}")
    if len(node_id) > MAX_ID_LENGTH:
        raise InvalidIdError(f"node id is longer than {MAX_ID_LENGTH} characters")
    if not ID_PATTERN.match(node_id):
        raise InvalidIdError(
            f"node id {node_id!r} must start with a letter or _ and contain only letters,"
            " digits, _ and -"
        )
    if node_id.startswith("_") or node_id in RESERVED_IDS:
        raise InvalidIdError(f"node id {node_id!r} is reserved; choose another name")
    return node_id
