"""The board's input rail read straight from the INA3221 power monitor's sysfs nodes.

tegrastats reads the same sensor; reading it directly gives each sample its exact time and lets the
meter choose the rate. Layouts (under the system root):

- Orin, L4T R35/R36 (hwmon driver): ``/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in<N>_label``
  names the rail (``VDD_IN``), ``in<N>_input`` is its voltage in mV and ``curr<N>_input`` its current
  in mA.
- Nano, L4T R32 (iio driver): ``/sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_<N>`` names the
  rail (``POM_5V_IN``) and ``in_power<N>_input`` is its power in mW.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional, Tuple

from edgeproof.device.sysinfo import SysRoot

INPUT_RAILS = ("VDD_IN", "POM_5V_IN")  # the board's input rail: Orin (R35/R36), Nano (R32)

Reader = Callable[[], Optional[float]]


def _number(path: Path) -> Optional[float]:
    try:
        return float(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _hwmon(root: SysRoot) -> List[Tuple[str, Reader]]:
    out: List[Tuple[str, Reader]] = []
    for label in root.glob("/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in*_label"):
        name = (root.read(f"/{label.relative_to(root.root)}") or "").strip()
        channel = label.name[len("in") : -len("_label")]
        volts, amps = label.parent / f"in{channel}_input", label.parent / f"curr{channel}_input"

        def read(volts: Path = volts, amps: Path = amps) -> Optional[float]:
            mv, ma = _number(volts), _number(amps)
            return mv * ma / 1000.0 if mv is not None and ma is not None else None

        out.append((name, read))
    return out


def _iio(root: SysRoot) -> List[Tuple[str, Reader]]:
    out: List[Tuple[str, Reader]] = []
    for rail in root.glob("/sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_*"):
        name = (root.read(f"/{rail.relative_to(root.root)}") or "").strip()
        power = rail.parent / f"in_power{rail.name[len('rail_name_') :]}_input"
        out.append((name, lambda power=power: _number(power)))
    return out


def input_rail(root: SysRoot) -> Tuple[Optional[str], Optional[Reader]]:
    """``(rail name, reader of its draw in mW)`` for the board's input rail, or ``(None, None)``."""
    rails = dict(_hwmon(root) + _iio(root))
    for name in INPUT_RAILS:
        if name in rails and rails[name]() is not None:
            return name, rails[name]
    return None, None
