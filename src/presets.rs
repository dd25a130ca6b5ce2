//! Spec files for the paper's claims, embedded so `stepsweep run NAME` and
//! `stepsweep reproduce` work from any directory.

pub const PRESETS: &[(&str, &str)] = &[
    ("poly", include_str!("../presets/poly.toml")),
    ("poly-basin", include_str!("../presets/poly-basin.toml")),
    ("poly-cascade", include_str!("../presets/poly-cascade.toml")),
    (
        "poly-momentum",
        include_str!("../presets/poly-momentum.toml"),
    ),
    (
        "poly-nesterov",
        include_str!("../presets/poly-nesterov.toml"),
    ),
    ("scalar-deep", include_str!("../presets/scalar-deep.toml")),
    (
        "scalar-deep-threshold",
        include_str!("../presets/scalar-deep-threshold.toml"),
    ),
    (
        "scalar-deep-boundary",
        include_str!("../presets/scalar-deep-boundary.toml"),
    ),
    (
        "deep-linear-random",
        include_str!("../presets/deep-linear-random.toml"),
    ),
    (
        "deep-linear-identity",
        include_str!("../presets/deep-linear-identity.toml"),
    ),
    ("relu-single", include_str!("../presets/relu-single.toml")),
    ("mlp-lr-plane", include_str!("../presets/mlp-lr-plane.toml")),
    (
        "relu-notebook",
        include_str!("../presets/relu-notebook.toml"),
    ),
];

pub fn find(name: &str) -> Option<&'static str> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_preset_parses_and_validates() {
        for (name, text) in super::PRESETS {
            let spec = crate::spec::Spec::from_toml(text, name).unwrap();
            crate::sweep::Sweep::new(spec).unwrap();
        }
    }
}
