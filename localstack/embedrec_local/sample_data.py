"""Seeded generator of realistic electronics-shop sample data: items, interactions and users as CSV.

The data is synthetic but has structure that a collaborative-filtering model can learn and a popularity
baseline cannot: customers belong to latent segments (Apple fans, PC gamers, photographers, …) with
category, brand, product-type and price preferences plus segment-specific tastes for individual items;
item popularity is Zipf-skewed; sessions follow a view → click → (add_to_cart) → purchase funnel; purchases
trigger complementary purchases (phone → case/charger of the same ecosystem, laptop → mouse/bag/monitor);
customers revisit products they looked at earlier. The same arguments always give byte-identical files.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from contract.interactions import INTERACTION_CODES, INTERACTION_TYPES

__all__ = [
    "DEFAULT_END",
    "INTERACTION_COLUMNS",
    "ITEM_COLUMNS",
    "USER_COLUMNS",
    "SampleDataSummary",
    "generate_sample_data",
]

ITEM_COLUMNS: Final = ("item_id", "title", "category", "price", "brand", "description")
INTERACTION_COLUMNS: Final = ("user_id", "item_id", "interaction_type", "timestamp", "rating")
USER_COLUMNS: Final = ("user_id", "signup_date", "country", "segment")

#: Default end of the interaction window: fixed (the walkthrough's date) so that output is reproducible.
DEFAULT_END: Final = datetime(2025, 1, 7, tzinfo=UTC)

_VIEW, _CLICK, _CART, _PURCHASE = (INTERACTION_CODES[name] for name in INTERACTION_TYPES)
_TYPE_NAMES: Final = INTERACTION_TYPES

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SampleDataSummary:
    """What :func:`generate_sample_data` wrote."""

    output_dir: Path
    items_path: Path
    interactions_path: Path
    users_path: Path
    n_items: int
    n_users: int
    n_interactions: int
    window_start: datetime
    window_end: datetime
    seed: int
    interaction_type_counts: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Catalogue definition
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Category:
    name: str
    share: float  # share of the catalogue
    price_sigma: float  # log-normal spread of an item's price around its product line's base price
    min_price: float
    max_price: float


@dataclass(frozen=True)
class _Line:
    """A product line: every item is one variant (storage, colour, size, fit, …) of a line."""

    category: str
    brand: str
    model: str
    kind: str
    base_price: float
    compat: str | None = None  # ecosystem an accessory is made for (None: universal or chosen by fit)


_CATEGORIES: Final = (
    _Category("Smartphones", 0.10, 0.10, 99.0, 1899.0),
    _Category("Laptops", 0.10, 0.12, 249.0, 4499.0),
    _Category("Tablets", 0.07, 0.10, 79.0, 2299.0),
    _Category("Audio", 0.13, 0.15, 19.0, 899.0),
    _Category("Wearables", 0.07, 0.12, 29.0, 999.0),
    _Category("Cameras", 0.07, 0.12, 59.0, 4499.0),
    _Category("Gaming", 0.11, 0.15, 19.0, 899.0),
    _Category("Accessories", 0.20, 0.22, 5.99, 399.0),
    _Category("Smart Home", 0.08, 0.18, 9.99, 999.0),
    _Category("Monitors", 0.07, 0.12, 89.0, 5999.0),
)

# (brand, model, kind, base price[, compat])
_LINE_SPECS: Final[dict[str, tuple[tuple[str, str, str, float] | tuple[str, str, str, float, str], ...]]] = {
    "Smartphones": (
        ("Apple", "iPhone 15 Pro Max", "phone", 1199),
        ("Apple", "iPhone 15 Pro", "phone", 999),
        ("Apple", "iPhone 15", "phone", 799),
        ("Apple", "iPhone 15 Plus", "phone", 899),
        ("Apple", "iPhone 14", "phone", 699),
        ("Apple", "iPhone SE", "phone", 429),
        ("Samsung", "Galaxy S24 Ultra", "phone", 1299),
        ("Samsung", "Galaxy S24", "phone", 899),
        ("Samsung", "Galaxy S24+", "phone", 999),
        ("Samsung", "Galaxy Z Flip5", "phone", 999),
        ("Samsung", "Galaxy Z Fold5", "phone", 1799),
        ("Samsung", "Galaxy A55", "phone", 449),
        ("Samsung", "Galaxy A15", "phone", 199),
        ("Google", "Pixel 8 Pro", "phone", 999),
        ("Google", "Pixel 8", "phone", 699),
        ("Google", "Pixel 7a", "phone", 499),
        ("OnePlus", "OnePlus 12", "phone", 799),
        ("OnePlus", "Nord CE3", "phone", 299),
        ("Xiaomi", "Xiaomi 14", "phone", 899),
        ("Xiaomi", "Redmi Note 13 Pro", "phone", 349),
        ("Xiaomi", "Redmi 13C", "phone", 149),
        ("Motorola", "Edge 40", "phone", 599),
        ("Motorola", "Moto G84", "phone", 299),
        ("Motorola", "Moto G54", "phone", 199),
        ("Sony", "Xperia 1 V", "phone", 1199),
        ("Sony", "Xperia 10 V", "phone", 399),
        ("Nothing", "Phone (2)", "phone", 599),
    ),
    "Laptops": (
        ("Apple", "MacBook Air 13", "laptop", 1099),
        ("Apple", "MacBook Air 15", "laptop", 1299),
        ("Apple", "MacBook Pro 14", "laptop", 1999),
        ("Apple", "MacBook Pro 16", "laptop", 2499),
        ("Dell", "XPS 13", "laptop", 1299),
        ("Dell", "XPS 15", "laptop", 1799),
        ("Dell", "Inspiron 15", "laptop", 649),
        ("Dell", "Latitude 7440", "laptop", 1399),
        ("Dell", "Alienware m16", "gaming_laptop", 2199),
        ("Lenovo", "ThinkPad X1 Carbon", "laptop", 1699),
        ("Lenovo", "ThinkPad T14", "laptop", 1199),
        ("Lenovo", "IdeaPad Slim 5", "laptop", 699),
        ("Lenovo", "Yoga 9i", "laptop", 1399),
        ("Lenovo", "Legion 5 Pro", "gaming_laptop", 1499),
        ("HP", "Spectre x360 14", "laptop", 1499),
        ("HP", "Envy 16", "laptop", 1199),
        ("HP", "Pavilion 15", "laptop", 649),
        ("HP", "Omen 16", "gaming_laptop", 1399),
        ("ASUS", "ZenBook 14", "laptop", 999),
        ("ASUS", "VivoBook 15", "laptop", 549),
        ("ASUS", "ROG Zephyrus G14", "gaming_laptop", 1599),
        ("ASUS", "TUF Gaming A15", "gaming_laptop", 999),
        ("Acer", "Swift Go 14", "laptop", 799),
        ("Acer", "Aspire 5", "laptop", 499),
        ("Acer", "Chromebook Plus 514", "laptop", 399),
        ("Acer", "Predator Helios 16", "gaming_laptop", 1699),
        ("Microsoft", "Surface Laptop 5", "laptop", 999),
        ("Razer", "Blade 15", "gaming_laptop", 2499),
        ("Samsung", "Galaxy Book3 Pro", "laptop", 1449),
    ),
    "Tablets": (
        ("Apple", "iPad 10th Gen", "tablet", 449),
        ("Apple", "iPad Air", "tablet", 599),
        ("Apple", "iPad Pro 11", "tablet", 799),
        ("Apple", "iPad Pro 12.9", "tablet", 1099),
        ("Apple", "iPad mini", "tablet", 499),
        ("Samsung", "Galaxy Tab S9", "tablet", 799),
        ("Samsung", "Galaxy Tab S9 FE", "tablet", 449),
        ("Samsung", "Galaxy Tab A9+", "tablet", 219),
        ("Lenovo", "Tab P12", "tablet", 399),
        ("Lenovo", "Tab M10 Plus", "tablet", 189),
        ("Amazon", "Fire HD 10", "tablet", 149),
        ("Amazon", "Fire Max 11", "tablet", 229),
        ("Microsoft", "Surface Pro 9", "tablet", 999),
        ("Xiaomi", "Pad 6", "tablet", 399),
        ("Google", "Pixel Tablet", "tablet", 499),
    ),
    "Audio": (
        ("Apple", "AirPods Pro 2", "earbuds", 249),
        ("Apple", "AirPods 3rd Gen", "earbuds", 169),
        ("Apple", "AirPods Max", "headphones", 549),
        ("Sony", "WH-1000XM5", "headphones", 399),
        ("Sony", "WF-1000XM5", "earbuds", 299),
        ("Sony", "LinkBuds S", "earbuds", 199),
        ("Sony", "ULT Field 1", "speaker", 129),
        ("Bose", "QuietComfort Ultra Headphones", "headphones", 429),
        ("Bose", "QuietComfort Ultra Earbuds", "earbuds", 299),
        ("Bose", "QuietComfort 45", "headphones", 329),
        ("Bose", "SoundLink Flex", "speaker", 149),
        ("Bose", "Smart Soundbar 600", "soundbar", 499),
        ("Sennheiser", "Momentum 4 Wireless", "headphones", 349),
        ("Sennheiser", "Momentum True Wireless 4", "earbuds", 299),
        ("Sennheiser", "HD 660S2", "headphones", 599),
        ("Sennheiser", "CX Plus", "earbuds", 129),
        ("JBL", "Flip 6", "speaker", 129),
        ("JBL", "Charge 5", "speaker", 179),
        ("JBL", "Go 3", "speaker", 49),
        ("JBL", "Tune 770NC", "headphones", 129),
        ("JBL", "Live Pro 2", "earbuds", 149),
        ("Samsung", "Galaxy Buds2 Pro", "earbuds", 229),
        ("Samsung", "Galaxy Buds FE", "earbuds", 99),
        ("Beats", "Studio Pro", "headphones", 349),
        ("Beats", "Fit Pro", "earbuds", 199),
        ("Beats", "Solo 4", "headphones", 199),
        ("Audio-Technica", "ATH-M50x", "headphones", 169),
        ("Audio-Technica", "AT-LP60X Turntable", "turntable", 149),
        ("Sonos", "Era 100", "speaker", 249),
        ("Sonos", "Era 300", "speaker", 449),
        ("Sonos", "Beam Gen 2", "soundbar", 499),
        ("Anker", "Soundcore Liberty 4 NC", "earbuds", 99),
        ("Anker", "Soundcore Motion 300", "speaker", 79),
        ("Google", "Pixel Buds Pro", "earbuds", 199),
    ),
    "Wearables": (
        ("Apple", "Watch Series 9", "smartwatch", 399),
        ("Apple", "Watch Ultra 2", "smartwatch", 799),
        ("Apple", "Watch SE", "smartwatch", 249),
        ("Samsung", "Galaxy Watch6", "smartwatch", 299),
        ("Samsung", "Galaxy Watch6 Classic", "smartwatch", 399),
        ("Samsung", "Galaxy Fit3", "fitness_tracker", 59),
        ("Garmin", "Fenix 7", "smartwatch", 699),
        ("Garmin", "Forerunner 265", "smartwatch", 449),
        ("Garmin", "Venu 3", "smartwatch", 449),
        ("Garmin", "Vivoactive 5", "smartwatch", 299),
        ("Garmin", "Instinct 2", "smartwatch", 299),
        ("Fitbit", "Charge 6", "fitness_tracker", 159),
        ("Fitbit", "Inspire 3", "fitness_tracker", 99),
        ("Fitbit", "Versa 4", "smartwatch", 199),
        ("Fitbit", "Sense 2", "smartwatch", 249),
        ("Google", "Pixel Watch 2", "smartwatch", 349),
        ("Amazfit", "GTR 4", "smartwatch", 199),
        ("Amazfit", "Bip 5", "smartwatch", 89),
        ("Amazfit", "Band 7", "fitness_tracker", 49),
        ("Xiaomi", "Smart Band 8", "fitness_tracker", 39),
        ("Oura", "Ring Gen3", "fitness_tracker", 299),
    ),
    "Cameras": (
        ("Canon", "EOS R6 Mark II", "camera", 2499),
        ("Canon", "EOS R8", "camera", 1499),
        ("Canon", "EOS R50", "camera", 679),
        ("Canon", "PowerShot G7 X Mark III", "compact_camera", 749),
        ("Sony", "Alpha 7 IV", "camera", 2499),
        ("Sony", "Alpha 6400", "camera", 899),
        ("Sony", "ZV-E10", "camera", 699),
        ("Sony", "ZV-1 II", "compact_camera", 899),
        ("Nikon", "Z6 II", "camera", 1999),
        ("Nikon", "Z50", "camera", 859),
        ("Nikon", "Z fc", "camera", 959),
        ("Fujifilm", "X-T5", "camera", 1699),
        ("Fujifilm", "X-S20", "camera", 1299),
        ("Fujifilm", "X100VI", "compact_camera", 1599),
        ("Fujifilm", "Instax Mini 12", "compact_camera", 79),
        ("Panasonic", "Lumix GH6", "camera", 1999),
        ("Panasonic", "Lumix S5 II", "camera", 1999),
        ("GoPro", "HERO12 Black", "action_cam", 399),
        ("GoPro", "HERO11 Black Mini", "action_cam", 299),
        ("DJI", "Osmo Pocket 3", "action_cam", 519),
        ("DJI", "Osmo Action 4", "action_cam", 399),
        ("DJI", "Mini 4 Pro", "drone", 759),
        ("DJI", "Air 3", "drone", 1099),
        ("Insta360", "X3", "action_cam", 449),
    ),
    "Gaming": (
        ("Sony", "PlayStation 5", "console", 499),
        ("Sony", "PlayStation 5 Slim", "console", 499),
        ("Sony", "DualSense Wireless Controller", "controller", 69),
        ("Sony", "PlayStation VR2", "vr", 549),
        ("Sony", "Pulse 3D Wireless Headset", "gaming_headset", 99),
        ("Microsoft", "Xbox Series X", "console", 499),
        ("Microsoft", "Xbox Series S", "console", 299),
        ("Microsoft", "Xbox Wireless Controller", "controller", 59),
        ("Microsoft", "Xbox Elite Controller Series 2", "controller", 179),
        ("Nintendo", "Switch OLED", "console", 349),
        ("Nintendo", "Switch Lite", "console", 199),
        ("Nintendo", "Switch Pro Controller", "controller", 69),
        ("Nintendo", "Joy-Con Pair", "controller", 79),
        ("Valve", "Steam Deck OLED", "console", 549),
        ("Meta", "Quest 3", "vr", 499),
        ("Razer", "DeathAdder V3", "gaming_mouse", 69),
        ("Razer", "Basilisk V3", "gaming_mouse", 69),
        ("Razer", "Huntsman V2", "gaming_keyboard", 149),
        ("Razer", "BlackShark V2 Pro", "gaming_headset", 179),
        ("Razer", "Kishi V2", "controller", 99),
        ("Logitech", "G Pro X Superlight 2", "gaming_mouse", 159),
        ("Logitech", "G502 X", "gaming_mouse", 79),
        ("Logitech", "G915 TKL", "gaming_keyboard", 229),
        ("Logitech", "G Pro X 2 Headset", "gaming_headset", 249),
        ("Logitech", "G29 Racing Wheel", "controller", 299),
        ("SteelSeries", "Arctis Nova 7", "gaming_headset", 179),
        ("SteelSeries", "Apex Pro TKL", "gaming_keyboard", 189),
        ("SteelSeries", "Rival 3", "gaming_mouse", 29),
        ("Corsair", "K70 RGB Pro", "gaming_keyboard", 169),
        ("Corsair", "HS80 RGB", "gaming_headset", 149),
        ("Corsair", "Dark Core RGB Pro", "gaming_mouse", 79),
        ("HyperX", "Cloud II", "gaming_headset", 99),
        ("HyperX", "Alloy Origins", "gaming_keyboard", 109),
    ),
    "Accessories": (
        ("Apple", "MagSafe Charger", "charger", 39, "Apple"),
        ("Apple", "20W USB-C Power Adapter", "charger", 19, "Apple"),
        ("Apple", "USB-C Charge Cable", "cable", 19, "Apple"),
        ("Apple", "Magic Mouse", "mouse", 79, "Apple"),
        ("Apple", "Magic Keyboard", "keyboard", 99, "Apple"),
        ("Apple", "Silicone Case with MagSafe", "phone_case", 49, "Apple"),
        ("Apple", "Pencil 2nd Gen", "stylus", 129, "Apple"),
        ("Apple", "Smart Folio", "tablet_case", 79, "Apple"),
        ("Apple", "AirTag", "tracker", 29, "Apple"),
        ("Apple", "Sport Loop Band", "watch_band", 49, "Apple"),
        ("Samsung", "25W Super Fast Charger", "charger", 19, "Samsung"),
        ("Samsung", "Silicone Case", "phone_case", 29, "Samsung"),
        ("Samsung", "T7 Portable SSD", "ssd", 109),
        ("Samsung", "EVO Plus microSD", "memory_card", 24),
        ("Samsung", "Galaxy SmartTag2", "tracker", 29, "Samsung"),
        ("Samsung", "S Pen Pro", "stylus", 79, "Samsung"),
        ("Samsung", "Book Cover", "tablet_case", 59, "Samsung"),
        ("Google", "Pixel Case", "phone_case", 29, "Google"),
        ("Google", "30W USB-C Charger", "charger", 25, "Google"),
        ("Anker", "735 Charger 65W", "charger", 59),
        ("Anker", "PowerCore 10000", "power_bank", 25),
        ("Anker", "737 Power Bank 24000mAh", "power_bank", 109),
        ("Anker", "USB-C Hub 7-in-1", "usb_hub", 39),
        ("Anker", "PowerLine III USB-C Cable", "cable", 15),
        ("Belkin", "BoostCharge Pro 3-in-1 MagSafe", "charger", 129, "Apple"),
        ("Belkin", "ScreenForce UltraGlass", "screen_protector", 39),
        ("Belkin", "USB-C Cable", "cable", 19),
        ("Belkin", "Thunderbolt 4 Dock Pro", "usb_hub", 299),
        ("Logitech", "MX Master 3S", "mouse", 99),
        ("Logitech", "MX Keys S", "keyboard", 109),
        ("Logitech", "M185 Wireless Mouse", "mouse", 14),
        ("Logitech", "Pebble Mouse 2", "mouse", 24),
        ("Logitech", "K380 Keyboard", "keyboard", 39),
        ("Logitech", "C920 HD Pro Webcam", "webcam", 69),
        ("Logitech", "Brio 4K Webcam", "webcam", 199),
        ("Spigen", "Ultra Hybrid Case", "phone_case", 15),
        ("Spigen", "Tough Armor Case", "phone_case", 19),
        ("Spigen", "GlasTR EZ Fit Screen Protector", "screen_protector", 14),
        ("OtterBox", "Defender Series Case", "phone_case", 59),
        ("OtterBox", "Symmetry Series Case", "phone_case", 49),
        ("Targus", "Classic Laptop Backpack", "laptop_bag", 49),
        ("Targus", "CityLite Laptop Sleeve", "laptop_bag", 29),
        ("Samsonite", "Xenon 3.0 Laptop Backpack", "laptop_bag", 89),
        ("SanDisk", "Extreme microSDXC", "memory_card", 29),
        ("SanDisk", "Extreme PRO SDXC", "memory_card", 49),
        ("SanDisk", "Extreme Portable SSD", "ssd", 119),
        ("Peak Design", "Everyday Backpack", "camera_bag", 279),
        ("Peak Design", "Slide Camera Strap", "camera_bag", 69),
        ("Lowepro", "ProTactic 350 AW", "camera_bag", 199),
        ("Manfrotto", "PIXI Mini Tripod", "tripod", 29),
        ("Manfrotto", "Befree Advanced Tripod", "tripod", 199),
        ("Ugreen", "Nexode 100W Charger", "charger", 59),
        ("Ugreen", "USB-C Hub 5-in-1", "usb_hub", 29),
        ("Nomad", "Sport Band", "watch_band", 59),
        ("ESR", "HaloLock Wireless Charger", "charger", 29),
        ("ESR", "Rebound Magnetic Case", "tablet_case", 39),
    ),
    "Smart Home": (
        ("Amazon", "Echo Dot 5th Gen", "smart_speaker", 49),
        ("Amazon", "Echo Pop", "smart_speaker", 39),
        ("Amazon", "Echo Studio", "smart_speaker", 199),
        ("Amazon", "Echo Show 8", "smart_display", 149),
        ("Amazon", "Fire TV Stick 4K", "streaming", 49),
        ("Google", "Nest Mini", "smart_speaker", 49),
        ("Google", "Nest Hub 2nd Gen", "smart_display", 99),
        ("Google", "Nest Learning Thermostat", "thermostat", 249),
        ("Google", "Nest Cam Indoor", "security_cam", 99),
        ("Google", "Nest Wifi Pro", "mesh_wifi", 199),
        ("Google", "Chromecast with Google TV", "streaming", 49),
        ("Apple", "HomePod mini", "smart_speaker", 99),
        ("Apple", "HomePod 2nd Gen", "smart_speaker", 299),
        ("Apple", "TV 4K", "streaming", 129),
        ("Philips", "Hue White and Color Starter Kit", "smart_bulb", 199),
        ("Philips", "Hue White Ambiance Bulb", "smart_bulb", 49),
        ("Philips", "Hue Lightstrip Plus", "smart_bulb", 79),
        ("Philips", "Hue Bridge", "smart_hub", 59),
        ("Ring", "Video Doorbell 4", "doorbell", 199),
        ("Ring", "Stick Up Cam", "security_cam", 99),
        ("Ring", "Alarm Security Kit", "smart_hub", 249),
        ("Eufy", "SoloCam S40", "security_cam", 199),
        ("Eufy", "Video Doorbell Dual", "doorbell", 199),
        ("Eufy", "RoboVac 11S", "robot_vacuum", 229),
        ("iRobot", "Roomba j7+", "robot_vacuum", 799),
        ("iRobot", "Roomba 694", "robot_vacuum", 274),
        ("TP-Link", "Kasa Smart Plug Mini", "smart_plug", 19),
        ("TP-Link", "Deco X55 Mesh WiFi", "mesh_wifi", 199),
        ("TP-Link", "Tapo C200 Camera", "security_cam", 29),
        ("Ecobee", "Smart Thermostat Premium", "thermostat", 249),
        ("Roku", "Streaming Stick 4K", "streaming", 49),
        ("Arlo", "Pro 5S 2K Camera", "security_cam", 249),
    ),
    "Monitors": (
        ("Dell", "UltraSharp U2723QE", "monitor", 579),
        ("Dell", "S2721QS", "monitor", 299),
        ("Dell", "P2422H", "monitor", 219),
        ("Dell", "Alienware AW3423DWF", "gaming_monitor", 899),
        ("LG", "UltraGear 27GP850", "gaming_monitor", 399),
        ("LG", "UltraFine 27UN850", "monitor", 449),
        ("LG", "32UN650", "monitor", 399),
        ("LG", "UltraWide 34WP65C", "monitor", 399),
        ("Samsung", "Odyssey G7", "gaming_monitor", 599),
        ("Samsung", "Odyssey OLED G9", "gaming_monitor", 1599),
        ("Samsung", "Smart Monitor M8", "monitor", 599),
        ("Samsung", "ViewFinity S8", "monitor", 399),
        ("ASUS", "ProArt PA278CV", "monitor", 349),
        ("ASUS", "ROG Swift PG27AQDM", "gaming_monitor", 899),
        ("ASUS", "TUF Gaming VG27AQ", "gaming_monitor", 279),
        ("BenQ", "PD2725U", "monitor", 899),
        ("BenQ", "GW2480", "monitor", 149),
        ("BenQ", "Mobiuz EX2710Q", "gaming_monitor", 399),
        ("Apple", "Studio Display", "monitor", 1599),
        ("Acer", "Nitro XV272U", "gaming_monitor", 299),
        ("Acer", "SB220Q", "monitor", 99),
        ("HP", "M27f", "monitor", 219),
        ("Gigabyte", "M27Q", "gaming_monitor", 299),
    ),
}

_COLOURS: Final = (
    "Black",
    "White",
    "Silver",
    "Blue",
    "Green",
    "Red",
    "Midnight",
    "Graphite",
    "Pink",
    "Beige",
)
_EDITIONS: Final = ("", "(2024 Model)", "Bundle", "(Renewed)")
_CONDITIONS: Final = ("", "(Renewed)", "(Open Box)")
# Titles for items beyond a line's distinct variants (only when a catalogue is very large).
_SELF_EXPLANATORY_MODELS: Final = (
    "iPhone",
    "iPad",
    "Galaxy",
    "Pixel",
    "Moto ",
    "Redmi",
    "Xperia",
    "OnePlus",
    "Xiaomi",
)
_FIT_AXIS: Final = ("@fit",)  # replaced by "for <device>" choices, one per device the accessory fits
_OVERFLOW_EDITIONS: Final = ("(International Version)", "(Refurbished Grade B)", "(Retail Exclusive)")

# Variant axes per kind; the title is "<brand> <model> <choice per axis>".
_VARIANT_AXES: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    "phone": (("128GB", "256GB", "512GB", "1TB"), _COLOURS),
    "laptop": (
        ("8GB/256GB", "8GB/512GB", "16GB/512GB", "16GB/1TB", "32GB/1TB", "32GB/2TB"),
        ("Silver", "Space Gray", "Black", "Platinum", "Midnight", "Blue"),
    ),
    "gaming_laptop": (
        (
            "RTX 4060 16GB/512GB",
            "RTX 4060 16GB/1TB",
            "RTX 4070 16GB/1TB",
            "RTX 4080 32GB/1TB",
            "RTX 4090 32GB/2TB",
        ),
        ("Black", "Eclipse Gray", "White"),
        ("", "(Renewed)"),
    ),
    "tablet": (("64GB", "128GB", "256GB", "512GB", "1TB"), ("Wi-Fi", "Wi-Fi + Cellular"), _COLOURS[:6]),
    "smartwatch": (("41mm", "45mm", "47mm"), ("GPS", "GPS + Cellular"), _COLOURS[:6]),
    "camera": (
        ("Body Only", "with 18-55mm Lens", "with 24-105mm Lens", "with 18-135mm Lens", "Creator Kit"),
        ("Black", "Silver"),
        _CONDITIONS,
    ),
    "compact_camera": (_COLOURS[:3], ("", "Creator Kit", "Travel Bundle"), _CONDITIONS),
    "console": (("Standard Edition", "Digital Edition", "Game Bundle", "1TB Edition"), ("", "(Renewed)")),
    "vr": (("128GB", "512GB"), ("", "Game Bundle", "(Renewed)")),
    "drone": (("", "Fly More Combo", "RC 2 Combo"), _CONDITIONS),
    "action_cam": (("", "Creator Combo", "Adventure Bundle", "Dive Bundle"), _CONDITIONS),
    "gaming_keyboard": (("Linear Switches", "Tactile Switches", "Clicky Switches"), _COLOURS[:3]),
    "gaming_headset": (("PC", "PlayStation", "Xbox"), _COLOURS[:4]),
    "charger": (("", "2-Pack"), _COLOURS[:3], ("", "(2024 Model)")),
    "cable": (("1m", "2m", "3m"), _COLOURS[:3], ("", "2-Pack")),
    "power_bank": (_COLOURS[:5], ("", "(2024 Model)")),
    "memory_card": (("64GB", "128GB", "256GB", "512GB", "1TB"), ("", "2-Pack")),
    "ssd": (("500GB", "1TB", "2TB", "4TB"), _COLOURS[:3]),
    "laptop_bag": (("13-inch", "14-inch", "15.6-inch", "16-inch"), _COLOURS[:5]),
    "smart_bulb": (("E26", "E27", "GU10"), ("1-Pack", "2-Pack", "4-Pack")),
    "smart_plug": (("1-Pack", "2-Pack", "4-Pack"), _COLOURS[:2]),
    "monitor": (
        ("", "with Height-Adjustable Stand", "with Monitor Arm", "(2024 Model)"),
        _COLOURS[:3],
        _CONDITIONS,
    ),
    "gaming_monitor": (("", "(2024 Model)", "Esports Edition"), _COLOURS[:3], _CONDITIONS),
    "phone_case": (_FIT_AXIS, _COLOURS),
    "screen_protector": (_FIT_AXIS, ("1-Pack", "2-Pack", "3-Pack")),
    "tablet_case": (_FIT_AXIS, _COLOURS[:6]),
    "watch_band": (_FIT_AXIS, _COLOURS),
    "stylus": (_COLOURS[:2], ("", "(Renewed)")),
}
_DEFAULT_AXES: Final = (_COLOURS, _EDITIONS)

# Accessory kind -> kind of device it fits (its "for <device>" axis).
_FITS: Final = {
    "phone_case": "phone",
    "screen_protector": "phone",
    "tablet_case": "tablet",
    "watch_band": "smartwatch",
}

# Price multiplier per step of a kind's first axis (bigger storage, bigger size, …).
_TIER_STEP: Final = {
    "phone": 0.12,
    "laptop": 0.15,
    "gaming_laptop": 0.18,
    "tablet": 0.15,
    "smartwatch": 0.06,
    "camera": 0.12,
    "memory_card": 0.45,
    "ssd": 0.5,
    "laptop_bag": 0.08,
    "vr": 0.25,
}

# One-line descriptions per kind, from premium to budget: a line gets the phrase matching its price rank.
_DESCRIPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "phone": (
        "Latest flagship smartphone",
        "Smartphone with pro-grade triple camera",
        "5G phone with all-day battery",
        "Great value smartphone with fast charging",
    ),
    "laptop": (
        "Professional laptop for creators",
        "Ultraportable laptop",
        "Business laptop with long battery life",
        "Thin and light laptop with a bright display",
        "Everyday laptop for work and study",
    ),
    "gaming_laptop": (
        "Powerful gaming laptop for AAA titles",
        "Gaming laptop with high-refresh display",
        "Portable gaming rig with RGB keyboard",
    ),
    "tablet": (
        "Pro tablet with laminated display",
        "Tablet for work and play",
        "Lightweight tablet for streaming and reading",
        "Family tablet with long battery life",
    ),
    "earbuds": (
        "Wireless earbuds with ANC",
        "True wireless earbuds with transparency mode",
        "Everyday wireless earbuds",
    ),
    "headphones": ("Over-ear headphones with noise cancelling", "Wireless headphones with 30-hour battery"),
    "speaker": ("Waterproof speaker with deep bass", "Portable Bluetooth speaker"),
    "soundbar": ("Dolby Atmos soundbar",),
    "turntable": ("Fully automatic belt-drive turntable",),
    "smartwatch": ("Rugged outdoor smartwatch", "GPS multisport watch", "Smartwatch with health tracking"),
    "fitness_tracker": ("Fitness tracker with heart-rate monitoring", "Sleep and activity tracker"),
    "camera": (
        "Full-frame mirrorless camera",
        "Mirrorless camera for hybrid shooters",
        "Entry-level mirrorless camera for vlogging",
    ),
    "compact_camera": ("Premium compact camera", "Vlogging compact camera"),
    "action_cam": ("Stabilised 4K camera for creators", "Waterproof action camera"),
    "drone": ("Foldable camera drone with 4K HDR", "Lightweight drone with obstacle sensing"),
    "console": ("Console for 4K gaming", "Next-gen gaming console"),
    "controller": ("Pro controller with remappable buttons", "Wireless game controller"),
    "vr": ("Virtual reality headset with eye tracking", "Standalone VR headset"),
    "gaming_mouse": ("Lightweight wireless gaming mouse", "Ergonomic gaming mouse with RGB"),
    "gaming_keyboard": ("Tenkeyless keyboard with per-key RGB", "Mechanical gaming keyboard"),
    "gaming_headset": ("Wireless gaming headset with clear mic", "Gaming headset with surround sound"),
    "charger": ("GaN charger for phone and laptop", "Fast wall charger"),
    "cable": ("Braided charging cable", "Fast charging USB-C cable"),
    "power_bank": ("High-capacity power bank for travel", "Portable power bank"),
    "usb_hub": ("USB-C hub with HDMI and card reader",),
    "mouse": ("Ergonomic productivity mouse", "Wireless mouse", "Compact travel mouse"),
    "keyboard": ("Backlit keyboard for multiple devices", "Wireless keyboard"),
    "webcam": ("4K webcam with auto light correction", "Full HD webcam for video calls"),
    "phone_case": ("Rugged case with drop protection", "Protective phone case", "Slim clear case"),
    "screen_protector": ("Tempered glass screen protector", "Scratch-resistant screen protector"),
    "tablet_case": ("Folio case for tablet", "Magnetic tablet cover"),
    "stylus": ("Precision stylus for tablet", "Pressure-sensitive pen"),
    "tracker": ("Item tracker for keys and bags",),
    "watch_band": ("Premium replacement watch band", "Breathable sport band"),
    "laptop_bag": ("Padded laptop backpack",),
    "memory_card": ("High-speed memory card for 4K video", "Memory card for cameras and drones"),
    "ssd": ("Portable SSD with fast transfers", "Rugged external SSD"),
    "camera_bag": ("Camera backpack with modular dividers",),
    "tripod": ("Compact travel tripod", "Tabletop tripod for vlogging"),
    "smart_speaker": (
        "Smart speaker with room-filling sound",
        "Smart speaker with voice assistant",
        "Compact smart speaker",
    ),
    "smart_display": ("Smart display with video calling", "Smart home hub with screen"),
    "streaming": ("4K HDR streaming device", "Streaming stick with voice remote"),
    "thermostat": ("Learning smart thermostat", "Energy-saving smart thermostat"),
    "security_cam": ("Outdoor security camera with night vision", "Indoor security camera"),
    "doorbell": ("Video doorbell with motion alerts", "Battery video doorbell"),
    "mesh_wifi": ("Mesh Wi-Fi system for whole-home coverage",),
    "smart_bulb": ("Smart LED bulbs with millions of colours", "Dimmable smart lighting"),
    "smart_hub": ("Smart home hub",),
    "smart_plug": ("Smart plug with app and voice control",),
    "robot_vacuum": ("Self-emptying robot vacuum", "Robot vacuum with smart mapping"),
    "monitor": (
        "Colour-accurate monitor for creators",
        "4K monitor with USB-C",
        "Office monitor with eye-care",
    ),
    "gaming_monitor": ("OLED gaming monitor", "Curved gaming monitor", "High-refresh gaming monitor"),
}

# Products that the price-rank rule above would describe wrongly.
_DESCRIPTION_OVERRIDES: Final = {
    "HD 660S2": "Open-back audiophile headphones",
    "ATH-M50x": "Studio monitor headphones",
    "Era 100": "Wi-Fi speaker for multi-room audio",
    "Era 300": "Spatial audio Wi-Fi speaker",
    "Ring Gen3": "Smart ring with sleep and readiness tracking",
    "Instax Mini 12": "Instant camera with fun prints",
    "X100VI": "Premium compact camera with fixed lens",
    "Switch OLED": "Handheld gaming console",
    "Switch Lite": "Handheld gaming console",
    "Steam Deck OLED": "Handheld PC gaming console",
    "G29 Racing Wheel": "Racing wheel with force feedback",
    "Kishi V2": "Mobile game controller",
    "Joy-Con Pair": "Pair of motion controllers",
    "MagSafe Charger": "Magnetic wireless charger",
    "BoostCharge Pro 3-in-1 MagSafe": "3-in-1 wireless charging stand",
    "HaloLock Wireless Charger": "Magnetic wireless charging pad",
    "Thunderbolt 4 Dock Pro": "Thunderbolt docking station for laptops",
    "Magic Mouse": "Multi-touch wireless mouse",
    "Slide Camera Strap": "Camera strap for all-day carry",
    "CityLite Laptop Sleeve": "Slim laptop sleeve",
    "Hue Bridge": "Bridge for Hue smart lights",
    "Hue Lightstrip Plus": "Smart LED light strip",
    "Alarm Security Kit": "Home security kit with base station",
}

# What customers buy after a purchase of a kind (complementary products).
_COMPLEMENTS: Final[dict[str, tuple[str, ...]]] = {
    "phone": ("phone_case", "screen_protector", "charger", "earbuds", "power_bank", "cable", "smartwatch"),
    "laptop": ("mouse", "keyboard", "laptop_bag", "usb_hub", "monitor", "webcam", "headphones"),
    "gaming_laptop": ("gaming_mouse", "gaming_keyboard", "gaming_headset", "laptop_bag", "gaming_monitor"),
    "tablet": ("tablet_case", "stylus", "keyboard", "earbuds", "charger"),
    "camera": ("memory_card", "camera_bag", "tripod", "ssd"),
    "compact_camera": ("memory_card", "camera_bag", "tripod"),
    "action_cam": ("memory_card", "tripod", "power_bank"),
    "drone": ("memory_card", "camera_bag", "power_bank"),
    "console": ("controller", "gaming_headset", "gaming_monitor"),
    "vr": ("gaming_headset", "controller"),
    "smartwatch": ("watch_band", "charger"),
    "fitness_tracker": ("watch_band", "earbuds"),
    "monitor": ("keyboard", "mouse", "webcam", "usb_hub"),
    "gaming_monitor": ("gaming_mouse", "gaming_keyboard", "gaming_headset"),
    "gaming_mouse": ("gaming_keyboard", "gaming_headset"),
    "gaming_keyboard": ("gaming_mouse", "gaming_headset"),
    "smart_speaker": ("smart_bulb", "smart_plug"),
    "smart_display": ("smart_bulb", "smart_plug", "security_cam"),
    "smart_hub": ("smart_bulb", "security_cam"),
    "doorbell": ("security_cam", "smart_display"),
    "security_cam": ("doorbell", "smart_hub"),
    "soundbar": ("streaming",),
    "streaming": ("soundbar",),
    "turntable": ("speaker",),
    "headphones": ("cable",),
    "earbuds": ("charger",),
}


@dataclass(frozen=True)
class _Segment:
    """A latent customer segment: where its attention goes and how it reacts to price."""

    name: str
    share: float
    categories: dict[str, float]
    brands: dict[str, float]
    kinds: dict[str, float]
    price_preference: float  # >0 prefers expensive items within a category, <0 prefers cheap ones


_SEGMENTS: Final = (
    _Segment(
        name="apple_enthusiast",
        share=0.12,
        categories={
            "Smartphones": 0.22,
            "Laptops": 0.14,
            "Tablets": 0.14,
            "Wearables": 0.14,
            "Audio": 0.14,
            "Accessories": 0.16,
            "Smart Home": 0.04,
            "Monitors": 0.02,
        },
        brands={"Apple": 12.0, "Belkin": 2.0, "Nomad": 2.0},
        kinds={},
        price_preference=0.5,
    ),
    _Segment(
        name="android_power_user",
        share=0.1,
        categories={
            "Smartphones": 0.3,
            "Wearables": 0.14,
            "Audio": 0.14,
            "Accessories": 0.26,
            "Tablets": 0.1,
            "Smart Home": 0.06,
        },
        brands={"Samsung": 4.0, "Google": 4.0, "OnePlus": 3.0, "Xiaomi": 2.0, "Nothing": 3.0, "Apple": 0.1},
        kinds={},
        price_preference=0.2,
    ),
    _Segment(
        name="pc_gamer",
        share=0.1,
        categories={
            "Gaming": 0.4,
            "Monitors": 0.2,
            "Laptops": 0.12,
            "Audio": 0.08,
            "Accessories": 0.12,
            "Smart Home": 0.03,
            "Smartphones": 0.05,
        },
        brands={
            "Razer": 4.0,
            "Logitech": 3.0,
            "SteelSeries": 3.0,
            "Corsair": 3.0,
            "HyperX": 3.0,
            "ASUS": 2.0,
        },
        kinds={
            "gaming_laptop": 8.0,
            "gaming_monitor": 6.0,
            "gaming_mouse": 3.0,
            "gaming_keyboard": 3.0,
            "console": 0.3,
            "controller": 0.4,
        },
        price_preference=0.3,
    ),
    _Segment(
        name="console_gamer",
        share=0.08,
        categories={
            "Gaming": 0.55,
            "Audio": 0.1,
            "Monitors": 0.1,
            "Smart Home": 0.1,
            "Accessories": 0.08,
            "Smartphones": 0.07,
        },
        brands={"Sony": 4.0, "Microsoft": 3.0, "Nintendo": 4.0, "Valve": 2.0},
        kinds={
            "console": 4.0,
            "controller": 4.0,
            "vr": 3.0,
            "streaming": 4.0,
            "soundbar": 3.0,
            "gaming_mouse": 0.2,
            "gaming_keyboard": 0.2,
        },
        price_preference=0.0,
    ),
    _Segment(
        name="photographer",
        share=0.07,
        categories={
            "Cameras": 0.45,
            "Accessories": 0.22,
            "Laptops": 0.12,
            "Monitors": 0.1,
            "Tablets": 0.06,
            "Smartphones": 0.05,
        },
        brands={
            "Canon": 3.0,
            "Sony": 2.5,
            "Nikon": 3.0,
            "Fujifilm": 3.0,
            "SanDisk": 3.0,
            "Peak Design": 4.0,
            "BenQ": 3.0,
        },
        kinds={"camera": 3.0, "memory_card": 6.0, "camera_bag": 6.0, "tripod": 6.0, "ssd": 4.0},
        price_preference=0.4,
    ),
    _Segment(
        name="audiophile",
        share=0.07,
        categories={
            "Audio": 0.6,
            "Smart Home": 0.1,
            "Accessories": 0.1,
            "Smartphones": 0.1,
            "Tablets": 0.05,
            "Gaming": 0.05,
        },
        brands={"Sony": 3.0, "Bose": 3.0, "Sennheiser": 5.0, "Audio-Technica": 5.0, "Sonos": 4.0},
        kinds={"headphones": 3.0, "turntable": 4.0, "soundbar": 2.0, "smart_speaker": 2.0},
        price_preference=0.7,
    ),
    _Segment(
        name="home_office",
        share=0.11,
        categories={
            "Laptops": 0.24,
            "Monitors": 0.24,
            "Accessories": 0.32,
            "Audio": 0.1,
            "Tablets": 0.05,
            "Smart Home": 0.05,
        },
        brands={"Dell": 3.0, "Lenovo": 3.0, "HP": 2.5, "Logitech": 3.0, "Microsoft": 2.0},
        kinds={
            "mouse": 4.0,
            "keyboard": 4.0,
            "webcam": 5.0,
            "usb_hub": 4.0,
            "laptop_bag": 2.0,
            "monitor": 3.0,
            "headphones": 2.0,
            "gaming_laptop": 0.2,
            "gaming_monitor": 0.2,
        },
        price_preference=0.0,
    ),
    _Segment(
        name="fitness",
        share=0.07,
        categories={
            "Wearables": 0.5,
            "Audio": 0.22,
            "Smartphones": 0.1,
            "Accessories": 0.12,
            "Smart Home": 0.06,
        },
        brands={"Garmin": 4.0, "Fitbit": 4.0, "Amazfit": 2.0, "Oura": 3.0, "Beats": 3.0, "JBL": 2.0},
        kinds={"earbuds": 4.0, "watch_band": 4.0, "fitness_tracker": 3.0},
        price_preference=0.0,
    ),
    _Segment(
        name="smart_home",
        share=0.07,
        categories={
            "Smart Home": 0.55,
            "Audio": 0.1,
            "Accessories": 0.1,
            "Tablets": 0.12,
            "Smartphones": 0.08,
            "Wearables": 0.05,
        },
        brands={"Amazon": 4.0, "Google": 4.0, "Philips": 3.0, "Ring": 3.0, "TP-Link": 2.0, "Eufy": 2.0},
        kinds={"smart_speaker": 2.0, "speaker": 2.0},
        price_preference=0.0,
    ),
    _Segment(
        name="budget_shopper",
        share=0.11,
        categories={
            "Accessories": 0.35,
            "Smartphones": 0.15,
            "Audio": 0.15,
            "Smart Home": 0.1,
            "Tablets": 0.1,
            "Wearables": 0.1,
            "Laptops": 0.05,
        },
        brands={
            "Xiaomi": 3.0,
            "Anker": 3.0,
            "Amazon": 2.0,
            "Motorola": 3.0,
            "Amazfit": 3.0,
            "Acer": 2.0,
            "Ugreen": 3.0,
            "TP-Link": 2.0,
        },
        kinds={},
        price_preference=-1.3,
    ),
    _Segment(
        name="student",
        share=0.06,
        categories={"Laptops": 0.25, "Tablets": 0.2, "Audio": 0.2, "Accessories": 0.25, "Smartphones": 0.1},
        brands={"Apple": 2.0, "Acer": 2.0, "Lenovo": 2.0, "HP": 1.5, "Anker": 2.0},
        kinds={"laptop_bag": 3.0, "earbuds": 2.0, "stylus": 3.0},
        price_preference=-0.5,
    ),
    _Segment(
        name="traveler_creator",
        share=0.04,
        categories={"Cameras": 0.3, "Audio": 0.2, "Accessories": 0.3, "Wearables": 0.1, "Smartphones": 0.1},
        brands={"GoPro": 4.0, "DJI": 4.0, "Insta360": 4.0, "Anker": 2.0, "Bose": 2.0},
        kinds={
            "action_cam": 6.0,
            "drone": 6.0,
            "power_bank": 4.0,
            "memory_card": 3.0,
            "earbuds": 2.0,
            "headphones": 2.0,
        },
        price_preference=0.0,
    ),
)

_COUNTRIES: Final = ("US", "GB", "DE", "FR", "CA", "ES", "IT", "NL", "AU", "SE", "PL", "IE")
_COUNTRY_WEIGHTS: Final = (0.40, 0.12, 0.10, 0.08, 0.07, 0.05, 0.05, 0.04, 0.04, 0.02, 0.02, 0.01)

# Sessions start more often at lunch time and in the evening (UTC, a mostly Atlantic customer base).
_HOUR_WEIGHTS: Final = (
    1.0,
    0.7,
    0.5,
    0.4,
    0.4,
    0.5,
    0.8,
    1.2,
    1.6,
    2.0,
    2.2,
    2.4,
    2.8,
    2.8,
    2.5,
    2.4,
    2.5,
    2.8,
    3.2,
    3.6,
    3.8,
    3.5,
    2.6,
    1.6,
)

# Funnel parameters (per funnel = one product a customer looks at).
_P_PRIMARY_SEGMENT: Final = 0.85
_P_REVISIT: Final = 0.15  # re-engage with a product seen before but not bought
_P_NEW_SESSION: Final = 0.45
_P_REVIEW: Final = 0.3
_P_CLICK: Final = 0.35
_P_CART: Final = 0.4
_P_PURCHASE_AFTER_CART: Final = 0.5
_P_COMPLEMENT: Final = 0.6  # a purchase makes the customer look at a complementary product
_P_COMPLEMENT_SAME_SESSION: Final = 0.7
# Complementary products are bought far more readily ("frequently bought together").
_P_COMPLEMENT_CLICK: Final = 0.75
_P_COMPLEMENT_CART: Final = 0.7
_P_RATING: Final = 0.4
_RATING_WEIGHTS: Final = (0.03, 0.05, 0.12, 0.35, 0.45)

# Activity skew: log-normal user weights; most users are light, a few are very heavy.
_ACTIVITY_SIGMA: Final = 1.1
_POPULARITY_EXPONENT: Final = 0.7
_SEGMENT_TASTE_SIGMA: Final = 1.1


# --------------------------------------------------------------------------------------------------
# Catalogue
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Catalogue:
    titles: list[str]
    categories: list[str]
    brands: list[str]
    descriptions: list[str]
    kinds: list[str]
    models: list[str]
    fits_model: list[str]  # device model an accessory fits ("" when universal)
    ecosystem: list[str]  # brand whose devices the item belongs with (an accessory's compat, else its brand)
    prices: FloatArray


def _lines() -> list[_Line]:
    lines: list[_Line] = []
    for category, specs in _LINE_SPECS.items():
        for spec in specs:
            compat = spec[4] if len(spec) == 5 else None  # type: ignore[misc]
            lines.append(_Line(category, spec[0], spec[1], spec[2], float(spec[3]), compat))
    return lines


def _split_evenly(total: int, weights: Sequence[float] | FloatArray) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    exact = total * w / w.sum()
    parts = np.floor(exact).astype(np.int64)
    remainder = total - int(parts.sum())
    if remainder:
        order = np.argsort(-(exact - parts), kind="stable")
        parts[order[:remainder]] += 1
    return [int(p) for p in parts]


def _split_with_capacity(total: int, weights: FloatArray, capacity: Sequence[int]) -> list[int]:
    """Like :func:`_split_evenly`, but moves what exceeds a part's capacity to parts with room left."""
    cap = np.asarray(capacity, dtype=np.int64)
    parts = np.asarray(_split_evenly(total, weights), dtype=np.int64)
    while True:
        surplus = int(np.maximum(parts - cap, 0).sum())
        room = parts < cap
        if surplus == 0 or not room.any():
            return [int(p) for p in parts]
        parts = np.minimum(parts, cap)
        parts[room] += _split_evenly(surplus, weights[room])


def _line_axes(
    line: _Line, devices: dict[str, list[_Line]]
) -> tuple[tuple[tuple[str, ...], ...], dict[str, _Line]]:
    """The variant axes of a line, and for accessories the device behind each "for <device>" choice."""
    axes = _VARIANT_AXES.get(line.kind, _DEFAULT_AXES)
    fit_kind = _FITS.get(line.kind)
    if fit_kind is None:
        return axes, {}
    targets = [d for d in devices[fit_kind] if line.compat is None or d.brand == line.compat]
    fitted = {_fit_label(d): d for d in targets}
    return (tuple(fitted), *axes[1:]), fitted


def _describe(lines: Sequence[_Line]) -> dict[_Line, str]:
    """One description per line: its kind's phrase for its price rank, or an override."""
    described: dict[_Line, str] = {}
    for kind, phrases in _DESCRIPTIONS.items():
        same_kind = sorted((line for line in lines if line.kind == kind), key=lambda line: -line.base_price)
        for rank, line in enumerate(same_kind):
            phrase = phrases[rank * len(phrases) // len(same_kind)]
            described[line] = _DESCRIPTION_OVERRIDES.get(line.model, phrase)
    return described


def _fit_label(device: _Line) -> str:
    """ "for iPhone 15 Pro", "for Apple Watch Series 9": the brand only where the model name lacks it."""
    if device.model.startswith(_SELF_EXPLANATORY_MODELS):
        return f"for {device.model}"
    return f"for {_title(device.brand, device.model, ())}"


def _title(brand: str, model: str, choices: Iterable[str]) -> str:
    prefix = model if model.startswith(brand) else f"{brand} {model}"
    return " ".join([prefix, *(c for c in choices if c)])


def _build_catalogue(n_items: int, rng: np.random.Generator) -> _Catalogue:
    """``n_items`` distinct variants of the product lines, split across categories by their shares."""
    lines = _lines()
    devices: dict[str, list[_Line]] = {}
    for line in lines:
        devices.setdefault(line.kind, []).append(line)

    titles: list[str] = []
    categories: list[str] = []
    brands: list[str] = []
    descriptions: list[str] = []
    kinds: list[str] = []
    models: list[str] = []
    fits_model: list[str] = []
    ecosystem: list[str] = []
    prices: list[float] = []
    seen_titles: set[str] = set()

    descriptions_by_line = _describe(lines)
    per_category = _split_evenly(n_items, [c.share for c in _CATEGORIES])
    for category, n_category in zip(_CATEGORIES, per_category, strict=True):
        if n_category == 0:
            continue
        category_lines = [line for line in lines if line.category == category.name]
        line_axes = [_line_axes(line, devices) for line in category_lines]
        capacity = [math.prod(len(a) for a in axes) for axes, _ in line_axes]
        # Lines get random shares of the category, as far as they have distinct variants to fill them.
        per_line = _split_with_capacity(
            n_category, rng.dirichlet(np.full(len(category_lines), 4.0)), capacity
        )
        for line, (axes, fitted), n_line in zip(category_lines, line_axes, per_line, strict=True):
            if n_line == 0:
                continue
            fit_kind = _FITS.get(line.kind)
            sizes = [len(a) for a in axes]
            n_combos = math.prod(sizes)
            combos = rng.permutation(n_combos)
            noise = rng.normal(0.0, category.price_sigma, size=int(n_line))
            cents = rng.choice(np.array([0.99, 0.99, 0.99, 0.95, 0.49, 0.0]), size=int(n_line))
            description = descriptions_by_line[line]
            for k in range(int(n_line)):
                combo = int(combos[k % n_combos])
                choice_idx = []
                for size in reversed(sizes):
                    choice_idx.append(combo % size)
                    combo //= size
                choice_idx.reverse()
                choices = [axes[a][i] for a, i in enumerate(choice_idx)]
                title = _title(line.brand, line.model, choices)
                overflow = 0
                while title in seen_titles:  # more items than distinct variants
                    edition = (
                        _OVERFLOW_EDITIONS[overflow]
                        if overflow < len(_OVERFLOW_EDITIONS)
                        else f"Edition {overflow - len(_OVERFLOW_EDITIONS) + 2}"
                    )
                    title = _title(line.brand, line.model, [*choices, edition])
                    overflow += 1
                seen_titles.add(title)
                fit = ""
                eco = line.compat or line.brand
                if fit_kind is not None:
                    device = fitted[choices[0]]
                    fit, eco = device.model, device.brand
                tier = choice_idx[0] if line.kind in _TIER_STEP else 0
                price = line.base_price * (1.0 + _TIER_STEP.get(line.kind, 0.0) * tier) * math.exp(noise[k])
                price = min(max(price, category.min_price), category.max_price)
                price = max(math.floor(price) + float(cents[k]), category.min_price)
                titles.append(title)
                categories.append(category.name)
                brands.append(line.brand)
                descriptions.append(description)
                kinds.append(line.kind)
                models.append(line.model)
                fits_model.append(fit)
                ecosystem.append(eco)
                prices.append(round(price, 2))

    order = rng.permutation(n_items)  # shuffle so that ids do not follow the category order
    return _Catalogue(
        titles=[titles[i] for i in order],
        categories=[categories[i] for i in order],
        brands=[brands[i] for i in order],
        descriptions=[descriptions[i] for i in order],
        kinds=[kinds[i] for i in order],
        models=[models[i] for i in order],
        fits_model=[fits_model[i] for i in order],
        ecosystem=[ecosystem[i] for i in order],
        prices=np.asarray(prices, dtype=np.float64)[order],
    )


# --------------------------------------------------------------------------------------------------
# Preferences
# --------------------------------------------------------------------------------------------------


def _codes(values: Sequence[str]) -> tuple[IntArray, list[str]]:
    """Integer codes for ``values`` in first-seen order (deterministic, unlike set iteration)."""
    vocabulary: dict[str, int] = {}
    codes = np.fromiter(
        (vocabulary.setdefault(v, len(vocabulary)) for v in values), dtype=np.int64, count=len(values)
    )
    return codes, list(vocabulary)


def _segment_item_weights(
    catalogue: _Catalogue, category_codes: IntArray, rng: np.random.Generator
) -> FloatArray:
    """Probability of each segment looking at each item: shape (segments, items), rows sum to 1.

    Within a category an item's weight is global popularity (Zipf) x segment taste (log-normal, the part
    only collaborative filtering can pick up) x brand and product-type affinity x price fit; the
    segment's attention is then split across categories by its category shares.
    """
    n_items = len(catalogue.titles)
    n_categories = len(_CATEGORIES)
    log_price = np.log(catalogue.prices)
    price_z = np.zeros(n_items)
    for c in range(n_categories):
        mask = category_codes == c
        if mask.sum() > 1:
            values = log_price[mask]
            price_z[mask] = (values - values.mean()) / (values.std() + 1e-9)
    popularity = (1.0 + rng.permutation(n_items)) ** -_POPULARITY_EXPONENT
    taste = rng.lognormal(0.0, _SEGMENT_TASTE_SIGMA, size=(len(_SEGMENTS), n_items))
    brands = np.asarray(catalogue.brands)
    kinds = np.asarray(catalogue.kinds)
    weights = np.empty((len(_SEGMENTS), n_items))
    for s, segment in enumerate(_SEGMENTS):
        affinity = popularity * taste[s] * np.exp(segment.price_preference * price_z)
        for brand, boost in segment.brands.items():
            affinity[brands == brand] *= boost
        for kind, boost in segment.kinds.items():
            affinity[kinds == kind] *= boost
        # A small floor keeps every category reachable (customers occasionally look outside their niche).
        shares = np.array([segment.categories.get(c.name, 0.0) + 0.01 for c in _CATEGORIES])
        mass = np.bincount(category_codes, weights=affinity, minlength=n_categories)
        shares = np.where(mass > 0, shares, 0.0)
        shares /= shares.sum()
        weights[s] = affinity * shares[category_codes] / mass[category_codes]
    return weights


class _Sampler:
    """Draws indices from a fixed discrete distribution, vectorised in chunks."""

    def __init__(
        self, weights: FloatArray, rng: np.random.Generator, chunk: int, index: IntArray | None = None
    ):
        cdf = np.cumsum(weights, dtype=np.float64)
        self._cdf = cdf / cdf[-1]
        self._rng = rng
        self._chunk = chunk
        self._index = index
        self._buffer: list[int] = []
        self._position = 0

    def draw(self) -> int:
        if self._position == len(self._buffer):
            positions = np.searchsorted(self._cdf, self._rng.random(self._chunk), side="right")
            positions = np.minimum(positions, len(self._cdf) - 1)
            self._buffer = (positions if self._index is None else self._index[positions]).tolist()
            self._position = 0
        value = self._buffer[self._position]
        self._position += 1
        return value


class _Uniforms:
    """Rows of uniform random numbers, drawn in chunks (one row per funnel)."""

    def __init__(self, rng: np.random.Generator, width: int, chunk: int):
        self._rng = rng
        self._width = width
        self._chunk = chunk
        self._rows: list[list[float]] = []
        self._position = 0

    def next(self) -> list[float]:
        if self._position == len(self._rows):
            self._rows = self._rng.random((self._chunk, self._width)).tolist()
            self._position = 0
        row = self._rows[self._position]
        self._position += 1
        return row


class _Complements:
    """Samples a complementary product for a purchase, preferring the same ecosystem and exact fit."""

    def __init__(self, catalogue: _Catalogue, segment_weights: FloatArray, rng: np.random.Generator):
        self._kind_codes, kind_names = _codes(catalogue.kinds)
        self._kind_of = {name: code for code, name in enumerate(kind_names)}
        self._eco_codes, eco_names = _codes([*catalogue.ecosystem, *catalogue.brands])
        n_items = len(catalogue.titles)
        self._ecosystem = self._eco_codes[:n_items]
        self._brand = self._eco_codes[n_items:]
        models, _ = _codes([*catalogue.models, *catalogue.fits_model])
        self._model = models[:n_items]
        self._fits = models[n_items:]
        self._tied = np.array(
            [
                fit != "" or eco != brand
                for fit, eco, brand in zip(
                    catalogue.fits_model, catalogue.ecosystem, catalogue.brands, strict=True
                )
            ]
        )
        self._kind_names = kind_names
        self._weights = segment_weights
        self._rng = rng
        self._cache: dict[tuple[int, int], _Sampler | None] = {}

    def draw(self, item: int, segment: int) -> int:
        """A complementary item for ``item`` bought by a customer of ``segment``; -1 when there is none."""
        key = (item, segment)
        if key not in self._cache:
            self._cache[key] = self._sampler(item, segment)
        sampler = self._cache[key]
        return -1 if sampler is None else sampler.draw()

    def _sampler(self, item: int, segment: int) -> _Sampler | None:
        kind = self._kind_names[int(self._kind_codes[item])]
        wanted = [self._kind_of[k] for k in _COMPLEMENTS.get(kind, ()) if k in self._kind_of]
        if not wanted:
            return None
        candidates = np.flatnonzero(np.isin(self._kind_codes, wanted))
        ecosystem = self._ecosystem[item]
        same = (self._ecosystem[candidates] == ecosystem) | (self._brand[candidates] == ecosystem)
        tied = self._tied[candidates]
        factor = np.where(same, 6.0, np.where(tied, 0.03, 1.0))
        factor *= np.where(self._fits[candidates] == self._model[item], 5.0, 1.0)
        weights = self._weights[segment, candidates] * factor
        if not weights.sum() > 0:
            return None
        return _Sampler(weights, self._rng, chunk=8, index=candidates)


# --------------------------------------------------------------------------------------------------
# Interactions
# --------------------------------------------------------------------------------------------------


@dataclass
class _Events:
    users: list[int] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    types: list[int] = field(default_factory=list)
    sessions: list[int] = field(default_factory=list)
    ratings: list[float] = field(default_factory=list)

    def truncate(self, length: int) -> None:
        for column in (self.users, self.items, self.types, self.sessions, self.ratings):
            del column[length:]


def _allocate_budgets(n_users: int, n_interactions: int, rng: np.random.Generator) -> IntArray:
    """Interactions per user: at least one each (while there are enough), heavy-tailed above that."""
    if n_users > n_interactions:
        budgets = np.zeros(n_users, dtype=np.int64)
        budgets[rng.choice(n_users, size=n_interactions, replace=False)] = 1
        return budgets
    # Capped at three sigmas: heavy customers, not crawlers.
    activity = np.minimum(rng.lognormal(0.0, _ACTIVITY_SIGMA, size=n_users), math.exp(3 * _ACTIVITY_SIGMA))
    extra = rng.multinomial(n_interactions - n_users, activity / activity.sum())
    return (1 + extra).astype(np.int64)


class _FunnelSimulator:
    """Walks users through browsing funnels; one funnel is one product a customer looks at.

    A funnel views the product, sometimes compares it with similar products of the same category, and may
    go on to click, add to cart and buy; a purchase may queue a complementary product for the next funnel.
    Events come out in per-user, per-session order.
    """

    def __init__(
        self,
        catalogue: _Catalogue,
        category_codes: IntArray,
        segment_weights: FloatArray,
        rng: np.random.Generator,
        *,
        n_interactions: int,
        include_add_to_cart: bool,
    ):
        chunk = max(256, n_interactions // 16)
        self._targets = [_Sampler(segment_weights[s], rng, chunk) for s in range(len(_SEGMENTS))]
        self._category_members = [np.flatnonzero(category_codes == c) for c in range(len(_CATEGORIES))]
        self._browsers: dict[tuple[int, int], _Sampler] = {}
        self._complements = _Complements(catalogue, segment_weights, rng)
        self._uniforms = _Uniforms(rng, width=13, chunk=min(65_536, max(256, n_interactions)))
        # Cheap products convert better than expensive ones.
        self._conversion: list[float] = np.clip((catalogue.prices / 100.0) ** -0.15, 0.6, 1.5).tolist()
        self._rating_cdf: list[float] = np.cumsum(_RATING_WEIGHTS)[:-1].tolist()
        self._categories: list[int] = category_codes.tolist()
        self._segment_weights = segment_weights
        self._rng = rng
        self._include_add_to_cart = include_add_to_cart
        self.events = _Events()
        self.session_users: list[int] = []  # the user of every session

    def simulate_user(self, user: int, budget: int, primary: int, secondary: int) -> None:
        """Append exactly ``budget`` events for ``user``."""
        end = len(self.events.items) + budget
        seen: list[int] = []  # products looked at but not bought: candidates for a later revisit
        pending = -1  # complementary product queued after a purchase
        pending_same_session = False
        first = True
        while len(self.events.items) < end:
            r = self._uniforms.next()
            is_complement = pending >= 0
            if first or (r[0] < _P_NEW_SESSION if not is_complement else not pending_same_session):
                self.session_users.append(user)
            first = False
            segment = primary if r[2] < _P_PRIMARY_SEGMENT else secondary
            if is_complement:
                target, pending = pending, -1
            elif seen and r[1] < _P_REVISIT:
                target = seen[int(r[12] * len(seen))]
            else:
                target = self._targets[segment].draw()
            self._emit(user, target, _VIEW)
            for _ in range(0 if r[3] < 0.45 else (1 if r[3] < 0.8 else 2)):
                self._emit(user, self._similar(segment, target), _VIEW)
            if self._funnel(user, target, r, is_complement):
                if target in seen:
                    seen.remove(target)
                if r[8] < _P_COMPLEMENT:
                    pending = self._complements.draw(target, segment)
                    pending_same_session = r[9] < _P_COMPLEMENT_SAME_SESSION
            elif target not in seen and len(seen) < 30:
                seen.append(target)
        self.events.truncate(end)

    def _funnel(self, user: int, target: int, r: list[float], is_complement: bool) -> bool:
        """Re-view, click, add to cart, buy, each only if the previous step happened; True if bought."""
        if r[4] < _P_REVIEW:
            self._emit(user, target, _VIEW)
        if r[5] >= (_P_COMPLEMENT_CLICK if is_complement else _P_CLICK):
            return False
        self._emit(user, target, _CLICK)
        if r[6] >= (_P_COMPLEMENT_CART if is_complement else _P_CART) * self._conversion[target]:
            return False
        if self._include_add_to_cart:
            self._emit(user, target, _CART)
        if r[7] >= _P_PURCHASE_AFTER_CART:
            return False
        rating = float(1 + sum(1 for c in self._rating_cdf if r[11] >= c)) if r[10] < _P_RATING else math.nan
        self._emit(user, target, _PURCHASE, rating)
        return True

    def _similar(self, segment: int, target: int) -> int:
        """A product from the target's category that this segment would also consider."""
        key = (segment, self._categories[target])
        browser = self._browsers.get(key)
        if browser is None:
            members = self._category_members[key[1]]
            browser = _Sampler(self._segment_weights[segment, members], self._rng, 256, index=members)
            self._browsers[key] = browser
        return browser.draw()

    def _emit(self, user: int, item: int, kind: int, rating: float = math.nan) -> None:
        events = self.events
        events.users.append(user)
        events.items.append(item)
        events.types.append(kind)
        events.sessions.append(len(self.session_users) - 1)
        events.ratings.append(rating)


def _window_days(window_start: datetime, days: int) -> FloatArray:
    """Relative weight of each day: busier weekends and a shop that grows over the window."""
    weekend = np.array([(window_start + timedelta(days=d)).weekday() >= 5 for d in range(days)])
    weights: FloatArray = np.where(weekend, 1.25, 1.0) * (1.0 + 0.3 * np.arange(days) / max(days - 1, 1))
    return weights / float(weights.sum())


def _timestamps(
    events: _Events,
    session_users: list[int],
    window_start: datetime,
    days: int,
    end_epoch: int,
    rng: np.random.Generator,
) -> IntArray:
    """Epoch seconds for every event: sessions at plausible days and hours, seconds to minutes apart."""
    sessions = np.asarray(events.sessions, dtype=np.int64)
    n_rows = len(sessions)
    n_sessions = len(session_users)
    day = rng.choice(days, size=n_sessions, p=_window_days(window_start, days))
    hours = np.asarray(_HOUR_WEIGHTS)
    hour = rng.choice(24, size=n_sessions, p=hours / hours.sum())
    second = rng.integers(0, 3600, size=n_sessions)
    start = int(window_start.timestamp()) + day * 86_400 + hour * 3_600 + second
    # A user's sessions happen in the order they were simulated (revisits and follow-up purchases come later).
    start = start[np.lexsort((start, np.asarray(session_users, dtype=np.int64)))]

    gaps = np.clip(rng.lognormal(np.log(40.0), 0.9, size=n_rows), 3.0, 1_800.0).astype(np.int64)
    is_first = np.ones(n_rows, dtype=bool)
    is_first[1:] = sessions[1:] != sessions[:-1]
    gaps[is_first] = 0
    elapsed = np.cumsum(gaps)
    first_row = np.maximum.accumulate(np.where(is_first, np.arange(n_rows), 0))
    offsets = elapsed - elapsed[first_row]
    return np.minimum(start[sessions] + offsets, end_epoch - 1)


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")


def generate_sample_data(
    output_dir: Path,
    *,
    users: int = 10_000,
    items: int = 5_000,
    interactions: int = 100_000,
    days: int = 90,
    seed: int = 42,
    end: datetime | None = None,
    include_add_to_cart: bool = False,
) -> SampleDataSummary:
    """Write ``items.csv``, ``interactions.csv`` and ``users.csv`` for a synthetic electronics shop.

    Interactions fall in the ``days`` days before ``end`` (default :data:`DEFAULT_END`; a naive datetime
    is taken as UTC). Exactly ``interactions`` rows are written; every user gets at least one
    interaction when ``interactions >= users``, otherwise ``interactions`` distinct users get one each.
    ``include_add_to_cart`` adds ``add_to_cart`` events between click and purchase (the walkthrough's
    files only use view, click and purchase). Same arguments, same bytes.

    Raises:
        ValueError: a count, ``days`` or ``seed`` is out of range.
    """
    for name, value in (("users", users), ("items", items), ("interactions", interactions), ("days", days)):
        _check_count(name, value)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    window_end = DEFAULT_END if end is None else end
    window_end = window_end.replace(tzinfo=UTC) if window_end.tzinfo is None else window_end.astimezone(UTC)
    window_end = window_end.replace(microsecond=0)
    window_start = window_end - timedelta(days=days)

    rng = np.random.default_rng(seed)
    catalogue = _build_catalogue(items, rng)
    category_codes = np.array(
        [[c.name for c in _CATEGORIES].index(name) for name in catalogue.categories], dtype=np.int64
    )
    segment_weights = _segment_item_weights(catalogue, category_codes, rng)

    n_segments = len(_SEGMENTS)
    shares = np.array([s.share for s in _SEGMENTS])
    primary = rng.choice(n_segments, size=users, p=shares / shares.sum())
    secondary = rng.integers(0, n_segments - 1, size=users)
    secondary = np.where(secondary >= primary, secondary + 1, secondary)
    budgets = _allocate_budgets(users, interactions, rng)
    simulator = _FunnelSimulator(
        catalogue,
        category_codes,
        segment_weights,
        rng,
        n_interactions=interactions,
        include_add_to_cart=include_add_to_cart,
    )
    for user, (budget, first_choice, second_choice) in enumerate(
        zip(budgets.tolist(), primary.tolist(), secondary.tolist(), strict=True)
    ):
        if budget:
            simulator.simulate_user(user, budget, first_choice, second_choice)
    events, session_users = simulator.events, simulator.session_users
    end_epoch = int(window_end.timestamp())
    epochs = _timestamps(events, session_users, window_start, days, end_epoch, rng)

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # At least four digits as in the walkthrough: user_0001 exists whatever the size; user_10000 follows 9999.
    user_ids = [f"user_{i:04d}" for i in range(1, users + 1)]
    item_ids = [f"item_{i:04d}" for i in range(1, items + 1)]

    items_path = output_dir / "items.csv"
    _write_items(items_path, item_ids, catalogue)
    interactions_path = output_dir / "interactions.csv"
    type_codes = _write_interactions(interactions_path, user_ids, item_ids, events, epochs)
    event_users = np.asarray(events.users, dtype=np.int64)
    users_path = output_dir / "users.csv"
    _write_users(users_path, user_ids, primary, event_users, epochs, window_end, rng)

    counts = np.bincount(type_codes, minlength=len(_TYPE_NAMES))
    return SampleDataSummary(
        output_dir=output_dir,
        items_path=items_path,
        interactions_path=interactions_path,
        users_path=users_path,
        n_items=items,
        n_users=users,
        n_interactions=len(type_codes),
        window_start=window_start,
        window_end=window_end,
        seed=int(seed),
        interaction_type_counts={name: int(n) for name, n in zip(_TYPE_NAMES, counts, strict=True) if n},
    )


def _write_items(path: Path, item_ids: list[str], catalogue: _Catalogue) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(ITEM_COLUMNS)
        writer.writerows(
            zip(
                item_ids,
                catalogue.titles,
                catalogue.categories,
                (f"{p:.2f}" for p in catalogue.prices.tolist()),
                catalogue.brands,
                catalogue.descriptions,
                strict=True,
            )
        )


def _write_interactions(
    path: Path, user_ids: list[str], item_ids: list[str], events: _Events, epochs: IntArray
) -> IntArray:
    """Write the events as an event log, oldest first; returns their type codes in file order."""
    event_users = np.asarray(events.users, dtype=np.int64)
    order = np.lexsort((np.arange(len(epochs)), event_users, epochs))
    stamps = np.datetime_as_string(epochs[order].astype("datetime64[s]"), unit="s").tolist()
    type_codes = np.asarray(events.types, dtype=np.int64)[order]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(INTERACTION_COLUMNS)
        writer.writerows(
            zip(
                (user_ids[u] for u in event_users[order].tolist()),
                (item_ids[i] for i in np.asarray(events.items, dtype=np.int64)[order].tolist()),
                (_TYPE_NAMES[t] for t in type_codes.tolist()),
                (f"{s}Z" for s in stamps),
                ("" if math.isnan(r) else f"{r:.1f}" for r in np.asarray(events.ratings)[order].tolist()),
                strict=True,
            )
        )
    return type_codes


def _write_users(
    path: Path,
    user_ids: list[str],
    primary: IntArray,
    event_users: IntArray,
    epochs: IntArray,
    window_end: datetime,
    rng: np.random.Generator,
) -> None:
    """Users sign up before their first interaction; some long ago, some within the window."""
    n_users = len(user_ids)
    end_epoch = int(window_end.timestamp())
    first_seen = np.full(n_users, end_epoch, dtype=np.int64)
    np.minimum.at(first_seen, event_users, epochs)
    tenure_days = np.minimum(rng.lognormal(np.log(180.0), 1.2, size=n_users), 3_650.0)
    signup = (first_seen - tenure_days * 86_400).astype(np.int64)
    dates = np.datetime_as_string(signup.astype("datetime64[s]"), unit="D").tolist()
    country_weights = np.asarray(_COUNTRY_WEIGHTS)
    countries = rng.choice(len(_COUNTRIES), size=n_users, p=country_weights / country_weights.sum()).tolist()
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(USER_COLUMNS)
        writer.writerows(
            zip(
                user_ids,
                dates,
                (_COUNTRIES[c] for c in countries),
                (_SEGMENTS[s].name for s in primary.tolist()),
                strict=True,
            )
        )
