//! The regions, from `handlers/data/world/regions.toml` (or an operator's file), validated with
//! errors that name the file and line.

use proto::aicore::world::v1::{Box as Bounds, Region, Vec3};
use serde::Deserialize;
use toml::Spanned;

use crate::kit::content::{Content, DataError, Embedded, Source};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    cell_size: Spanned<f64>,
    max_entities: Spanned<u32>,
    #[serde(default)]
    player_sight: Option<Spanned<f64>>,
    start_region: Spanned<String>,
    start_position: Spanned<[f64; 3]>,
    region: Vec<Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: Spanned<String>,
    name: String,
    biome: Spanned<String>,
    min: [f64; 3],
    max: [f64; 3],
    description: String,
    /// Its canon id, when it differs from its id.
    canon: Option<String>,
}

/// One region as the service uses it.
#[derive(Debug, Clone)]
pub struct RegionDef {
    /// As clients see it.
    pub region: Region,
    /// Bounds, `[x, y, z]`.
    pub min: [f64; 3],
    /// Bounds, `[x, y, z]`.
    pub max: [f64; 3],
    /// Its id in the canon (`handlers/data/canon.toml`): its `canon`, or its id.
    pub canon: String,
    line: usize,
}

impl RegionDef {
    /// Whether `p` lies inside (edges included).
    pub fn contains(&self, p: [f64; 3]) -> bool {
        (0..3).all(|i| self.min[i] <= p[i] && p[i] <= self.max[i])
    }
}

/// Every region, in file order.
#[derive(Debug, Clone)]
pub struct Regions {
    /// The regions.
    pub list: Vec<RegionDef>,
    /// The side of a grid cell, metres.
    pub cell_size: f64,
    /// Most entities in one region.
    pub max_entities: u32,
    /// How far (metres, from their own entity) a player sees other players' entities; 0: not at
    /// all (a player sees only their own). Services see every entity.
    pub player_sight: f64,
    /// Where a new player begins: a region id of `list`.
    pub start_region: String,
    /// The point in the start region where a new player begins.
    pub start_position: [f64; 3],
    file: String,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Regions {
    /// A region by id.
    pub fn get(&self, id: &str) -> Option<&RegionDef> {
        self.list.iter().find(|r| r.region.id == id)
    }

    /// Checks that every region is a region of the canon, under the canon's name: `canon_name`
    /// gives the name of a canon region (`None`: no such region). The error names its line.
    pub fn check_canon(
        &self,
        canon_name: impl Fn(&str) -> Option<String>,
    ) -> Result<(), DataError> {
        for r in &self.list {
            let message = match canon_name(&r.canon) {
                None => format!(
                    "region {}: {:?} is not a region of the canon (handlers/data/canon.toml)",
                    r.region.id, r.canon
                ),
                Some(name) if name != r.region.name => format!(
                    "region {}: named {:?}, but the canon names it {name:?}",
                    r.region.id, r.region.name
                ),
                Some(_) => continue,
            };
            return Err(DataError {
                file: self.file.clone(),
                line: r.line,
                message,
            });
        }
        Ok(())
    }
}

impl Content for Regions {
    const SHIPPED: Embedded = crate::embedded!("world/regions.toml");

    /// Parses and validates.
    fn parse(src: &Source) -> Result<Regions, DataError> {
        let file: File = src.toml()?;
        let cell = *file.cell_size.get_ref();
        if !(cell.is_finite() && (1.0..=10_000.0).contains(&cell)) {
            return Err(src.error(Some(file.cell_size.span()), "cell_size must be 1 to 10000"));
        }
        if !(1..=1_000_000).contains(file.max_entities.get_ref()) {
            return Err(src.error(
                Some(file.max_entities.span()),
                "max_entities must be 1 to 1000000",
            ));
        }
        let player_sight = match &file.player_sight {
            Some(v) if !(v.get_ref().is_finite() && (0.0..=100_000.0).contains(v.get_ref())) => {
                return Err(src.error(Some(v.span()), "player_sight must be 0 to 100000"));
            }
            Some(v) => *v.get_ref(),
            None => 0.0,
        };
        if file.region.is_empty() {
            return Err(src.error(None, "no [[region]]"));
        }
        let mut list: Vec<RegionDef> = Vec::new();
        for entry in &file.region {
            let span = entry.span();
            let e = entry.get_ref();
            let id = e.id.get_ref();
            if !valid_id(id) {
                return Err(src.error(
                    Some(e.id.span()),
                    format!(
                        "region id {id:?} must be 1 to 32 lowercase letters, digits, '_' or '-'"
                    ),
                ));
            }
            if list.iter().any(|r| &r.region.id == id) {
                return Err(src.error(Some(e.id.span()), format!("region {id:?} appears twice")));
            }
            if !valid_id(e.biome.get_ref()) {
                return Err(src.error(
                    Some(e.biome.span()),
                    "biome must be lowercase letters, digits or '_'",
                ));
            }
            if e.name.trim().is_empty() || e.description.trim().is_empty() {
                return Err(src.error(
                    Some(span.clone()),
                    format!("region {id:?} needs a name and a description"),
                ));
            }
            if (0..3)
                .any(|i| !(e.min[i].is_finite() && e.max[i].is_finite() && e.min[i] < e.max[i]))
            {
                return Err(src.error(
                    Some(span.clone()),
                    format!("region {id:?}: min must be below max on every axis"),
                ));
            }
            if let Some(other) = list.iter().find(|r| {
                [0, 2]
                    .iter()
                    .all(|&i| e.min[i] < r.max[i] && r.min[i] < e.max[i])
            }) {
                return Err(src.error(
                    Some(span.clone()),
                    format!("region {id:?} overlaps {:?}", other.region.id),
                ));
            }
            let v = |a: [f64; 3]| Vec3 {
                x: a[0],
                y: a[1],
                z: a[2],
            };
            list.push(RegionDef {
                region: Region {
                    id: id.clone(),
                    name: e.name.trim().to_owned(),
                    biome: e.biome.get_ref().clone(),
                    bounds: Some(Bounds {
                        min: Some(v(e.min)),
                        max: Some(v(e.max)),
                    }),
                    description: e.description.trim().to_owned(),
                },
                min: e.min,
                max: e.max,
                canon: e.canon.clone().unwrap_or_else(|| id.clone()),
                line: src.error(Some(span.clone()), "").line,
            });
        }
        let start_region = file.start_region.get_ref().clone();
        let start_position = *file.start_position.get_ref();
        match list.iter().find(|r| r.region.id == start_region) {
            None => {
                return Err(src.error(
                    Some(file.start_region.span()),
                    format!("start_region {start_region:?} is not a region of this file"),
                ));
            }
            Some(r) if !(0..3).all(|i| (r.min[i]..=r.max[i]).contains(&start_position[i])) => {
                return Err(src.error(
                    Some(file.start_position.span()),
                    format!("start_position must lie inside {start_region:?}'s bounds"),
                ));
            }
            Some(_) => {}
        }
        Ok(Regions {
            file: src.file.clone(),
            list,
            cell_size: cell,
            max_entities: *file.max_entities.get_ref(),
            player_sight,
            start_region,
            start_position,
        })
    }
}
