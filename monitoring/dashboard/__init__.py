# Copyright (c) 2026, CERES platform team
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollout's Grafana dashboard: built with grafana-foundation-sdk (:mod:`.build`), checked strictly
against the SDK's typed schema (:mod:`.schema`), shipped as a JSON file and a provisioning ConfigMap."""
