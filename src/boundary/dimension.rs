//! Box-counting estimate of the fractal dimension of a set of grid cells.
//!
//! A set is given as finest cells `(i, j)` on a square grid. It is covered by boxes of side
//! 1, 2, 4, … cells anchored at the origin, the occupied boxes are counted at each size, and the
//! dimension is the least-squares slope of ln N(size) against ln(1/size) over a range of sizes
//! where the set is neither blurred by rasterization nor covered by only a handful of boxes.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The number of boxes of side `size` (in finest cells) that hold at least one cell of the set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxCount {
    pub size: u64,
    pub count: u64,
}

/// Box counts of a set of finest cells (i, j), 0 <= i, j < extent, at sizes 1, 2, 4, … up to the
/// largest power of two <= extent. Cells may repeat; order does not matter.
///
/// An extent of 0 has no sizes and gives an empty list. An empty set gives a count of 0 at every
/// size.
///
/// # Panics
///
/// When a cell lies outside the grid, because a box count of such a set would silently describe
/// some other set.
pub fn box_counts(cells: impl IntoIterator<Item = (u64, u64)>, extent: u64) -> Vec<BoxCount> {
    if extent == 0 {
        return Vec::new();
    }
    let levels = extent.ilog2();

    // In Z-order a box of side 2^k is a run of consecutive codes sharing the code's bits above
    // 2k, so one sort makes every coarser level a shift plus a dedup of an already sorted list.
    let mut codes: Vec<u128> = cells
        .into_iter()
        .map(|(i, j)| {
            assert!(
                i < extent && j < extent,
                "cell ({i}, {j}) lies outside the grid of extent {extent}"
            );
            (spread_bits(i) << 1) | spread_bits(j)
        })
        .collect();
    codes.sort_unstable();
    codes.dedup();

    let mut counts = Vec::with_capacity(levels as usize + 1);
    for level in 0..=levels {
        if level > 0 {
            for code in &mut codes {
                *code >>= 2;
            }
            codes.dedup();
        }
        counts.push(BoxCount {
            size: 1 << level,
            count: codes.len() as u64,
        });
    }
    counts
}

/// Places the bits of `x` at the even bit positions of the result, so that two coordinates can
/// be interleaved into one Z-order code.
fn spread_bits(x: u64) -> u128 {
    // Each mask keeps alternating runs of 32, 16, … 1 bits; u128::MAX / (2^w + 1) is exactly
    // the pattern of w zeros above w ones, repeated.
    let mut x = u128::from(x);
    x = (x | (x << 32)) & (u128::MAX / ((1 << 32) + 1));
    x = (x | (x << 16)) & (u128::MAX / ((1 << 16) + 1));
    x = (x | (x << 8)) & (u128::MAX / ((1 << 8) + 1));
    x = (x | (x << 4)) & (u128::MAX / ((1 << 4) + 1));
    x = (x | (x << 2)) & (u128::MAX / ((1 << 2) + 1));
    x = (x | (x << 1)) & (u128::MAX / ((1 << 1) + 1));
    x
}

/// The slope of log N against log(1/size) between each pair of adjacent sizes (finer first).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairSlope {
    pub fine: u64,
    pub coarse: u64,
    pub slope: f64,
}

/// A box-counting dimension with the evidence behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// Least-squares slope of ln N(size) against ln(1/size) over the kept sizes.
    pub dimension: f64,
    /// Its 95% confidence interval from the regression's standard error and Student's t with
    /// n−2 degrees of freedom. When the points lie exactly on a line the interval is the
    /// dimension itself.
    pub interval: (f64, f64),
    /// The smallest and largest sizes kept, counting only sizes that entered the fit.
    pub kept: (u64, u64),
    /// Number of sizes in the fit.
    pub points: usize,
    /// Share of the variance of ln N explained by the line. When ln N does not vary at all the
    /// line reproduces it exactly, and this is reported as 1.
    pub r_squared: f64,
    /// Adjacent-size slopes over all sizes with a nonzero count (not only the kept ones).
    pub slopes: Vec<PairSlope>,
}

/// Fits over the sizes in `keep` (inclusive; None = `default_keep`). Errors (a one-sentence String
/// saying what to fix) when fewer than 3 kept sizes have a nonzero count, or keep is not within the counts.
///
/// The counts may come in any order. Sizes with a count of 0 are skipped, since the logarithm of
/// an empty count does not exist.
pub fn fit(counts: &[BoxCount], keep: Option<(u64, u64)>) -> Result<Fit, String> {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable_by_key(|c| c.size);
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return Err("There are no box counts; count the set at 3 or more sizes first.".into());
    };
    let (smallest, largest) = (first.size, last.size);
    if smallest == 0 {
        return Err("A box count has size 0; give every box a side of at least one cell.".into());
    }
    if sorted.windows(2).any(|w| w[0].size == w[1].size) {
        return Err("A size appears more than once; give each size a single count.".into());
    }

    let (lo, hi) = match keep {
        Some((lo, hi)) => {
            if lo > hi || lo < smallest || hi > largest {
                return Err(format!(
                    "keep ({lo}, {hi}) is not within the counted sizes {smallest}..={largest}; \
                     pass bounds inside that range with the smaller one first."
                ));
            }
            (lo, hi)
        }
        None => default_keep(&sorted),
    };

    let used: Vec<BoxCount> = sorted
        .iter()
        .copied()
        .filter(|c| c.count > 0 && (lo..=hi).contains(&c.size))
        .collect();
    if used.len() < 3 {
        let found = used.len();
        return Err(if keep.is_some() {
            format!(
                "keep ({lo}, {hi}) holds {found} sizes with a nonzero count where 3 are needed; \
                 widen it."
            )
        } else {
            format!(
                "The default range ({lo}, {hi}) holds {found} sizes with a nonzero count where \
                 3 are needed; count a nonempty set on a grid of at least 64 cells per side, or \
                 pass keep."
            )
        });
    }

    let xs: Vec<f64> = used.iter().map(|c| -(c.size as f64).ln()).collect();
    let ys: Vec<f64> = used.iter().map(|c| (c.count as f64).ln()).collect();
    let n = used.len() as f64;
    let mean_x = xs.iter().sum::<f64>() / n;
    let mean_y = ys.iter().sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mean_x).powi(2)).sum();
    let sxy: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let syy: f64 = ys.iter().map(|y| (y - mean_y).powi(2)).sum();
    let slope = sxy / sxx;
    let intercept = mean_y - slope * mean_x;
    let ss_res: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (y - intercept - slope * x).powi(2))
        .sum();

    let dof = n - 2.0;
    let standard_error = (ss_res / dof / sxx).sqrt();
    let t = StudentsT::new(0.0, 1.0, dof)
        .map_err(|e| format!("The t distribution could not be built ({e}); report this as a bug."))?
        .inverse_cdf(0.975);
    let half_width = t * standard_error;
    let r_squared = if syy > 0.0 { 1.0 - ss_res / syy } else { 1.0 };

    let nonzero: Vec<&BoxCount> = sorted.iter().filter(|c| c.count > 0).collect();
    let slopes = nonzero
        .windows(2)
        .map(|w| PairSlope {
            fine: w[0].size,
            coarse: w[1].size,
            slope: (w[0].count as f64 / w[1].count as f64).ln()
                / (w[1].size as f64 / w[0].size as f64).ln(),
        })
        .collect();

    Ok(Fit {
        dimension: slope,
        interval: (slope - half_width, slope + half_width),
        kept: (used[0].size, used[used.len() - 1].size),
        points: used.len(),
        r_squared,
        slopes,
    })
}

/// The sizes a fit keeps by default, given the counts: drop the finest size (1: pixel-level
/// rasterization noise) and every size at which the set spans fewer than 8 boxes per axis, i.e.
/// size > extent/8, where extent is inferred as the largest size × 1.
///
/// The counts do not record the grid's extent, only that the largest size is the largest power
/// of two not above it, so the extent lies somewhere from the largest size up to just under twice
/// it. Taking the lower end (× 1) means every size kept also passes the rule for whatever the
/// true extent was; a larger factor would, for a grid whose side is a power of two, keep a size
/// at which the grid is only 4 boxes across, where the edge boxes dominate the count.
///
/// The lower bound is the smallest counted size above 1, because at size 1 the count is the
/// number of rasterized cells, which depends on how the set was drawn rather than on its shape.
/// Dropping size 1 does not remove every trace of the drawing: a slanted line drawn with one
/// cell per step along its longer axis (8-connected) holds fewer cells than the line passes
/// through, and its counts fall short of the line's up to sizes of about 16, pulling the slope
/// of a straight line down to about 0.95. Sets drawn as every cell they pass through do not
/// have this bias.
///
/// The rule looks at the grid, not at the set. A set that fills only part of the grid spans
/// fewer boxes at the coarse end than the rule assumes, and a filled region is hit hardest,
/// because boxes holding only a sliver of its border add to its count in proportion to its
/// perimeter; pass `keep` explicitly for such sets.
///
/// For a grid of side 2^k this keeps sizes 2 … 2^(k−3), which is 3 or more sizes only when the
/// side is at least 64. When no size qualifies the range is empty (its first bound exceeds the
/// second), and `fit` reports that too few sizes remain.
pub fn default_keep(counts: &[BoxCount]) -> (u64, u64) {
    let largest = counts.iter().map(|c| c.size).max().unwrap_or(0);
    let extent = largest;
    let lo = counts
        .iter()
        .map(|c| c.size)
        .filter(|&s| s > 1)
        .min()
        .unwrap_or(2);
    let hi = counts
        .iter()
        .map(|c| c.size)
        .filter(|&s| s.saturating_mul(8) <= extent)
        .max()
        .unwrap_or(0);
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grid side for the shape tests: fine enough for 9 sizes (2 … 512) in the default range,
    /// small enough that the largest set (about 6 million cells) counts in well under a second.
    const GRID: u64 = 4096;
    const TOLERANCE: f64 = 0.05;

    /// Marks every cell the segment from `a` to `b` (in cell units) passes through, walking from
    /// cell to edge-sharing cell. A box of any size then holds a marked cell exactly when the
    /// continuous segment enters it, so the counts are those of the segment itself. An
    /// 8-connected line (plain DDA or Bresenham) keeps only one cell per step along the longer
    /// axis and undercounts fine boxes, which biases the slope over several sizes, not just 1.
    fn draw_segment(a: (f64, f64), b: (f64, f64), extent: u64, out: &mut Vec<(u64, u64)>) {
        let last = (extent - 1) as i64;
        let cell = |v: f64| (v.floor() as i64).clamp(0, last);
        let (mut x, mut y) = (cell(a.0), cell(a.1));
        let end = (cell(b.0), cell(b.1));
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (step_x, step_y) = (dx.signum() as i64, dy.signum() as i64);
        // Fraction of the segment travelled when it next crosses a vertical or horizontal cell
        // side; the nearer crossing decides which neighbour comes next.
        let first_crossing = |p: f64, c: i64, d: f64| {
            if d == 0.0 {
                f64::INFINITY
            } else if d > 0.0 {
                ((c + 1) as f64 - p) / d
            } else {
                (c as f64 - p) / d
            }
        };
        let mut cross_x = first_crossing(a.0, x, dx);
        let mut cross_y = first_crossing(a.1, y, dy);
        out.push((x as u64, y as u64));
        // Stepping only toward the end cell on each axis keeps rounding from overshooting it.
        while (x, y) != end {
            if y == end.1 || (x != end.0 && cross_x < cross_y) {
                x += step_x;
                cross_x += 1.0 / dx.abs();
            } else {
                y += step_y;
                cross_y += 1.0 / dy.abs();
            }
            out.push((x as u64, y as u64));
        }
    }

    fn unit_to_cells(p: (f64, f64), extent: u64) -> (f64, f64) {
        (p.0 * extent as f64, p.1 * extent as f64)
    }

    fn polyline_cells(points: &[(f64, f64)], extent: u64) -> Vec<(u64, u64)> {
        let mut cells = Vec::new();
        for w in points.windows(2) {
            draw_segment(
                unit_to_cells(w[0], extent),
                unit_to_cells(w[1], extent),
                extent,
                &mut cells,
            );
        }
        cells
    }

    /// Cells whose centres fall inside a square of side `side` centred in the unit square and
    /// turned by `angle`, so that its edges are not aligned with the grid.
    fn filled_square(side: f64, angle: f64, extent: u64) -> Vec<bool> {
        let (sin, cos) = angle.sin_cos();
        let half = side / 2.0;
        let n = extent as usize;
        let mut inside = vec![false; n * n];
        for i in 0..n {
            for j in 0..n {
                let x = (i as f64 + 0.5) / extent as f64 - 0.5;
                let y = (j as f64 + 0.5) / extent as f64 - 0.5;
                let u = cos * x + sin * y;
                let v = -sin * x + cos * y;
                inside[i * n + j] = u.abs() <= half && v.abs() <= half;
            }
        }
        inside
    }

    fn cells_of(inside: &[bool], extent: u64) -> Vec<(u64, u64)> {
        let n = extent as usize;
        (0..n * n)
            .filter(|&k| inside[k])
            .map(|k| ((k / n) as u64, (k % n) as u64))
            .collect()
    }

    /// The Koch curve over the base from (0.05, 0.3) to (0.95, 0.3). After 8 iterations its
    /// segments are 0.9 × 4096 / 3^8 ≈ 0.56 cells long, so it is resolved down to the cell.
    fn koch_cells(extent: u64) -> Vec<(u64, u64)> {
        let mut points = vec![(0.05, 0.3), (0.95, 0.3)];
        let (sin60, cos60) = std::f64::consts::FRAC_PI_3.sin_cos();
        for _ in 0..8 {
            let mut next = Vec::with_capacity(points.len() * 4);
            for w in points.windows(2) {
                let (a, b) = (w[0], w[1]);
                let d = ((b.0 - a.0) / 3.0, (b.1 - a.1) / 3.0);
                let p1 = (a.0 + d.0, a.1 + d.1);
                let p3 = (a.0 + 2.0 * d.0, a.1 + 2.0 * d.1);
                let peak = (
                    p1.0 + d.0 * cos60 - d.1 * sin60,
                    p1.1 + d.0 * sin60 + d.1 * cos60,
                );
                next.extend([a, p1, peak, p3]);
            }
            next.push(points[points.len() - 1]);
            points = next;
        }
        polyline_cells(&points, extent)
    }

    fn report(name: &str, fit: &Fit) {
        println!(
            "{name}: dimension {:.4}, 95% interval ({:.4}, {:.4}), sizes {:?}, {} points, R² {:.5}",
            fit.dimension, fit.interval.0, fit.interval.1, fit.kept, fit.points, fit.r_squared
        );
        let local: Vec<String> = fit
            .slopes
            .iter()
            .map(|s| format!("{}→{}: {:.3}", s.fine, s.coarse, s.slope))
            .collect();
        println!("{name}: local slopes {}", local.join(", "));
    }

    fn assert_dimension(name: &str, cells: Vec<(u64, u64)>, expected: f64, tolerance: f64) {
        let fit = fit(&box_counts(cells, GRID), None).expect("default fit");
        report(name, &fit);
        assert!(
            (fit.dimension - expected).abs() < tolerance,
            "{name}: measured {} but expected {expected} ± {tolerance}",
            fit.dimension
        );
        assert!(fit.interval.0 <= fit.dimension && fit.dimension <= fit.interval.1);
    }

    #[test]
    fn slanted_segment_has_dimension_one() {
        let cells = polyline_cells(&[(0.1, 0.2), (0.9, 0.7)], GRID);
        assert_dimension("segment", cells, 1.0, TOLERANCE);
    }

    #[test]
    fn edge_of_turned_square_has_dimension_one() {
        let inside = filled_square(0.6, 0.5, GRID);
        let n = GRID as usize;
        let is_in = |i: usize, j: usize| i < n && j < n && inside[i * n + j];
        let mut edge = Vec::new();
        for i in 0..n {
            for j in 0..n {
                // wrapping_sub turns a step off the low side into a huge index, which is_in
                // treats as outside like any other off-grid neighbour.
                let outside_neighbour = !is_in(i + 1, j)
                    || !is_in(i.wrapping_sub(1), j)
                    || !is_in(i, j + 1)
                    || !is_in(i, j.wrapping_sub(1));
                if is_in(i, j) && outside_neighbour {
                    edge.push((i as u64, j as u64));
                }
            }
        }
        assert_dimension("square edge", edge, 1.0, TOLERANCE);
    }

    #[test]
    fn koch_curve_has_dimension_log4_over_log3() {
        let expected = 4f64.ln() / 3f64.ln();
        assert_dimension("Koch curve", koch_cells(GRID), expected, TOLERANCE);
    }

    #[test]
    fn sierpinski_triangle_has_dimension_log3_over_log2() {
        let cells = (0..GRID)
            .flat_map(|i| (0..GRID).map(move |j| (i, j)))
            .filter(|&(i, j)| i & j == 0);
        let expected = 3f64.ln() / 2f64.ln();
        assert_dimension("Sierpinski triangle", cells.collect(), expected, TOLERANCE);
    }

    #[test]
    fn filled_square_has_dimension_two() {
        // Looser than the other shapes: at the coarse end of the default range the turned
        // square is only about 6.5 boxes across, and boxes holding just a sliver of its border
        // make up 17 of the 40 it occupies (its area is 23 boxes), so the fit lands near 1.92.
        let inside = filled_square(0.6, 0.5, GRID);
        assert_dimension("filled square", cells_of(&inside, GRID), 2.0, 0.1);
    }

    #[test]
    fn segment_counts_are_those_of_the_continuous_segment() {
        // From (0.5, 0.5) to (5.5, 2.5) the segment crosses 5 vertical and 2 horizontal cell
        // sides (at y = 1 and 2, reached at x = 1.75 and 4.25, never at a corner), so it passes
        // through 8 cells. In boxes of side 2 it crosses x = 2, x = 4 and then y = 2, entering 4.
        let mut cells = Vec::new();
        draw_segment((0.5, 0.5), (5.5, 2.5), 8, &mut cells);
        let counts = box_counts(cells, 8);
        assert_eq!(counts[0], BoxCount { size: 1, count: 8 });
        assert_eq!(counts[1], BoxCount { size: 2, count: 4 });
    }

    #[test]
    fn single_point_has_dimension_zero() {
        let fit = fit(&box_counts([(1234, 567)], GRID), None).expect("default fit");
        report("single point", &fit);
        assert_eq!(fit.dimension, 0.0);
        assert_eq!(fit.interval, (0.0, 0.0));
        assert_eq!(fit.points, 9);
    }

    #[test]
    fn interval_contains_dimension_and_has_width_when_noisy() {
        let fit = fit(&box_counts(koch_cells(GRID), GRID), None).expect("default fit");
        let (lo, hi) = fit.interval;
        assert!(lo.is_finite() && hi.is_finite());
        assert!(lo < fit.dimension && fit.dimension < hi);
        // A t interval is symmetric about the slope.
        assert!(((fit.dimension - lo) - (hi - fit.dimension)).abs() < 1e-12);
    }

    #[test]
    fn interval_matches_hand_computed_t_interval() {
        let counts = [
            BoxCount { size: 1, count: 32 },
            BoxCount { size: 2, count: 4 },
            BoxCount { size: 4, count: 1 },
        ];
        let fit = fit(&counts, Some((1, 4))).expect("fit");
        // In units of ln 2: y = (5, 2, 0) against x = (0, −1, −2). Then Sxx = 2, Sxy = 5, slope
        // 2.5, fitted (29/6, 14/6, −1/6), residuals (1/6, −1/3, 1/6), SSres = 1/6, Syy = 38/3.
        // The units cancel in the standard error and in R².
        let se = (1.0_f64 / 6.0 / 1.0 / 2.0).sqrt();
        let t = 12.706_204_736_174_7; // 97.5% quantile of t with 1 degree of freedom
        assert!((fit.dimension - 2.5).abs() < 1e-12);
        assert!((fit.interval.0 - (2.5 - t * se)).abs() < 1e-6);
        assert!((fit.interval.1 - (2.5 + t * se)).abs() < 1e-6);
        assert!((fit.r_squared - (1.0 - 1.0 / 76.0)).abs() < 1e-12);
        assert_eq!(fit.kept, (1, 4));
    }

    #[test]
    fn keep_outside_counts_is_an_error() {
        let counts = box_counts([(3, 4), (100, 200)], GRID);
        assert!(fit(&counts, Some((1, 2 * GRID))).is_err());
        assert!(fit(&counts, Some((0, 64))).is_err());
        assert!(fit(&counts, Some((64, 8))).is_err());
        assert!(fit(&counts, Some((2, 4))).is_err(), "only 2 sizes kept");
        assert!(fit(&counts, Some((2, 8))).is_ok());
    }

    #[test]
    fn too_small_or_empty_inputs_are_errors() {
        assert!(fit(&[], None).is_err());
        assert!(
            fit(&box_counts([(1, 1)], 32), None).is_err(),
            "grid too small"
        );
        assert!(fit(&box_counts([], GRID), None).is_err(), "empty set");
        assert!(fit(&box_counts([(1, 1)], 64), None).is_ok());
    }

    #[test]
    fn default_keep_drops_finest_and_coarse_sizes() {
        assert_eq!(default_keep(&box_counts([(0, 0)], 4096)), (2, 512));
        // A grid of 5000 reaches size 4096 only, so the inferred extent stays 4096.
        assert_eq!(default_keep(&box_counts([(0, 0)], 5000)), (2, 512));
        assert_eq!(default_keep(&box_counts([(0, 0)], 64)), (2, 8));
    }

    #[test]
    fn box_counts_of_small_set_match_hand_count() {
        // Extent 5 allows sizes 1, 2, 4. Boxes of side 2 hit (0,0), (0,0), (1,1), (2,2);
        // boxes of side 4 hit (0,0) three times and (1,1) once.
        let cells = [(0, 0), (1, 1), (0, 0), (3, 2), (4, 4)];
        let expected = vec![
            BoxCount { size: 1, count: 4 },
            BoxCount { size: 2, count: 3 },
            BoxCount { size: 4, count: 2 },
        ];
        assert_eq!(box_counts(cells, 5), expected);
        // Order and repetition do not matter.
        let shuffled = [(4, 4), (0, 0), (3, 2), (1, 1), (4, 4), (0, 0)];
        assert_eq!(box_counts(shuffled, 5), expected);
    }

    #[test]
    fn box_counts_edge_cases() {
        assert!(box_counts([], 0).is_empty());
        assert_eq!(box_counts([], 1), vec![BoxCount { size: 1, count: 0 }]);
        let far = u64::MAX - 1;
        let counts = box_counts([(far, 0), (0, far)], u64::MAX);
        assert_eq!(counts.len(), 64);
        assert_eq!(
            counts[63],
            BoxCount {
                size: 1 << 63,
                count: 2
            }
        );
    }

    #[test]
    #[should_panic(expected = "outside the grid")]
    fn cell_outside_grid_panics() {
        box_counts([(5, 0)], 5);
    }

    #[test]
    fn pair_slopes_cover_all_nonzero_sizes() {
        let counts = [
            BoxCount { size: 4, count: 1 },
            BoxCount { size: 1, count: 16 },
            BoxCount { size: 2, count: 4 },
            BoxCount { size: 8, count: 1 },
        ];
        let fit = fit(&counts, Some((1, 4))).expect("fit");
        assert_eq!(fit.points, 3);
        assert_eq!(fit.slopes.len(), 3);
        assert_eq!((fit.slopes[0].fine, fit.slopes[0].coarse), (1, 2));
        assert!((fit.slopes[0].slope - 2.0).abs() < 1e-12);
        assert!((fit.slopes[2].slope - 0.0).abs() < 1e-12);
    }
}
