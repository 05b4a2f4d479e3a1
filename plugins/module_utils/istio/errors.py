# Copyright (c) 2025, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The errors of a traffic shift: raised by the istio module utils, turned into a failed task
only by traffic_shift's main()."""

from __future__ import annotations

from ansible_collections.ceres.rollout.plugins.module_utils.common.errors import CeresError

# --------------------------------------------------------------------------- errors


class TrafficShiftError(CeresError):
    """A traffic shift cannot be done as asked. ``field`` names the option at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__("%s: %s" % (field, problem))
        self.field = field
        self.problem = problem


class InvalidRequest(TrafficShiftError):
    """The options contradict themselves (weight out of range, canary equal to stable)."""


class VirtualServiceNotFound(TrafficShiftError):
    """The VirtualService (or the VirtualService API itself) does not exist."""


class RouteNotFound(TrafficShiftError):
    """No HTTP route by that name, or no HTTP route at all."""


class AmbiguousRoute(TrafficShiftError):
    """The route was omitted but the VirtualService has several HTTP routes."""


class DestinationNotFound(TrafficShiftError):
    """The stable destination is not in the route."""


class AmbiguousDestination(TrafficShiftError):
    """A stable/canary selector matches several destinations, or the canary selector matches
    the stable destination."""


class UnmanagedTraffic(TrafficShiftError):
    """The route sends traffic to a destination that is neither stable nor canary."""


class WeightsNotApplied(TrafficShiftError):
    """The weights read back after the write are not the ones asked for."""


class TooManyConflicts(TrafficShiftError):
    """Every write attempt lost a race with another writer, until ``max_conflict_retries``
    or the ``timeout`` ran out (``field`` says which)."""
