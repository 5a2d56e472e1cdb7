//! Draws the tray icon with the badge in it, as raw RGBA pixels.
//!
//! The drawn number is the only badge that works on every platform (Linux
//! AppIndicator has no tooltip and most panels show no label), so the count is
//! part of the image: a white bell on a deep-blue disc, and a red badge with a
//! white rim at the top right. Dark fill with a light rim stays readable on
//! both light and dark panels.
//!
//! Pure and deterministic: no GUI toolkit, so it is unit-tested here and the
//! shell only hands the pixels to the tray.

use crate::badge::Badge;

/// Side of the square icon in pixels.
pub const SIZE: usize = 32;

/// An RGBA image, row-major, 4 bytes a pixel, straight (not premultiplied)
/// alpha.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes.
    pub rgba: Vec<u8>,
}

type Rgb = [u8; 3];
const DISC: Rgb = [0x1f, 0x4e, 0x79];
const RIM: Rgb = [0xe8, 0xf0, 0xf8];
const BELL: Rgb = [0xff, 0xff, 0xff];
const BADGE: Rgb = [0xd9, 0x2d, 0x20];
const DIGIT: Rgb = [0xff, 0xff, 0xff];

/// A 14×13 bell, `#` = ink.
const BELL_SHAPE: [&str; 13] = [
    "......##......",
    ".....####.....",
    "....######....",
    "...########...",
    "...########...",
    "...########...",
    "...########...",
    "..##########..",
    "..##########..",
    ".############.",
    "##############",
    "......##......",
    ".....####.....",
];

/// 3×5 glyphs for the badge text.
fn glyph(c: char) -> Option<[&'static str; 5]> {
    Some(match c {
        '0' => ["###", "#.#", "#.#", "#.#", "###"],
        '1' => [".#.", "##.", ".#.", ".#.", "###"],
        '2' => ["###", "..#", "###", "#..", "###"],
        '3' => ["###", "..#", ".##", "..#", "###"],
        '4' => ["#.#", "#.#", "###", "..#", "..#"],
        '5' => ["###", "#..", "###", "..#", "###"],
        '6' => ["###", "#..", "###", "#.#", "###"],
        '7' => ["###", "..#", ".#.", ".#.", ".#."],
        '8' => ["###", "#.#", "###", "#.#", "###"],
        '9' => ["###", "#.#", "###", "..#", "###"],
        '+' => ["...", ".#.", "###", ".#.", "..."],
        _ => return None,
    })
}

struct Canvas {
    rgba: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Canvas { rgba: vec![0; SIZE * SIZE * 4] }
    }

    /// Blends `color` at `coverage` (0..=1) over the pixel.
    fn blend(&mut self, x: usize, y: usize, color: Rgb, coverage: f32) {
        if x >= SIZE || y >= SIZE || coverage <= 0.0 {
            return;
        }
        let i = (y * SIZE + x) * 4;
        let src_a = coverage.min(1.0);
        let dst_a = f32::from(self.rgba[i + 3]) / 255.0;
        let out_a = src_a + dst_a * (1.0 - src_a);
        for (channel, src) in self.rgba[i..i + 3].iter_mut().zip(color) {
            let (src, dst) = (f32::from(src), f32::from(*channel));
            let out = (src * src_a + dst * dst_a * (1.0 - src_a)) / out_a;
            *channel = out.round().clamp(0.0, 255.0) as u8;
        }
        self.rgba[i + 3] = (out_a * 255.0).round() as u8;
    }

    /// Fills a shape given by `inside(x, y)` with 4×4 supersampling, so edges
    /// are smooth at 32 px.
    fn fill(&mut self, color: Rgb, inside: impl Fn(f32, f32) -> bool) {
        const N: usize = 4;
        for y in 0..SIZE {
            for x in 0..SIZE {
                let mut hits = 0;
                for sy in 0..N {
                    for sx in 0..N {
                        let px = x as f32 + (sx as f32 + 0.5) / N as f32;
                        let py = y as f32 + (sy as f32 + 0.5) / N as f32;
                        if inside(px, py) {
                            hits += 1;
                        }
                    }
                }
                self.blend(x, y, color, hits as f32 / (N * N) as f32);
            }
        }
    }

    fn stamp(&mut self, rows: &[&str], left: usize, top: usize, scale: usize, color: Rgb) {
        for (dy, row) in rows.iter().enumerate() {
            for (dx, ch) in row.chars().enumerate() {
                if ch != '#' {
                    continue;
                }
                for sy in 0..scale {
                    for sx in 0..scale {
                        self.blend(left + dx * scale + sx, top + dy * scale + sy, color, 1.0);
                    }
                }
            }
        }
    }
}

/// A stadium (pill) from `x0` to `x1` centred on row `cy` with radius `r`.
fn in_pill(px: f32, py: f32, x0: f32, x1: f32, cy: f32, r: f32) -> bool {
    let (lo, hi) = (x0 + r, x1 - r);
    let cx = if lo <= hi { px.clamp(lo, hi) } else { (x0 + x1) / 2.0 };
    (px - cx).powi(2) + (py - cy).powi(2) <= r * r
}

/// Renders the icon for `badge`.
pub fn render(badge: &Badge) -> Pixels {
    let mut canvas = Canvas::new();
    let c = SIZE as f32 / 2.0;
    canvas.fill(RIM, |x, y| (x - c).powi(2) + (y - c).powi(2) <= 15.5f32.powi(2));
    canvas.fill(DISC, |x, y| (x - c).powi(2) + (y - c).powi(2) <= 14.5f32.powi(2));
    canvas.stamp(&BELL_SHAPE, 9, 10, 1, BELL);

    let label = badge.label();
    if badge.count > 0 {
        const SCALE: usize = 2;
        let glyphs: Vec<[&str; 5]> = label.chars().filter_map(glyph).collect();
        let text_w = glyphs.len() * 3 * SCALE + glyphs.len().saturating_sub(1) * SCALE;
        let text_h = 5 * SCALE;
        // Pill sized to the text with 3 px padding, at least a circle.
        let height = text_h + 6;
        let width = (text_w + 6).max(height);
        let (x1, y0) = (SIZE as f32, 0.0);
        let x0 = x1 - width as f32;
        let r = height as f32 / 2.0;
        let cy = y0 + r;
        canvas.fill(RIM, |x, y| in_pill(x, y, x0 - 1.0, x1 + 1.0, cy, r + 1.0));
        canvas.fill(BADGE, |x, y| in_pill(x, y, x0, x1, cy, r));
        let mut left = SIZE - width + (width - text_w) / 2;
        let top = (height - text_h) / 2;
        for g in glyphs {
            canvas.stamp(&g, left, top, SCALE, DIGIT);
            left += 4 * SCALE;
        }
    } else if badge.dot {
        let (cx, cy, r): (f32, f32, f32) = (SIZE as f32 - 7.0, 7.0, 6.0);
        canvas.fill(RIM, |x, y| (x - cx).powi(2) + (y - cy).powi(2) <= (r + 1.5).powi(2));
        canvas.fill(BADGE, |x, y| (x - cx).powi(2) + (y - cy).powi(2) <= r * r);
    }
    Pixels { width: SIZE as u32, height: SIZE as u32, rgba: canvas.rgba }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(p: &Pixels, x: usize, y: usize) -> [u8; 4] {
        let i = (y * SIZE + x) * 4;
        [p.rgba[i], p.rgba[i + 1], p.rgba[i + 2], p.rgba[i + 3]]
    }

    fn is_badge_red(px: [u8; 4]) -> bool {
        px[0] > 180 && px[1] < 90 && px[2] < 90 && px[3] == 255
    }

    fn red_columns(p: &Pixels) -> std::ops::RangeInclusive<usize> {
        let cols: Vec<usize> = (0..SIZE).filter(|&x| (0..SIZE).any(|y| is_badge_red(pixel(p, x, y)))).collect();
        cols[0]..=cols[cols.len() - 1]
    }

    #[test]
    fn no_badge_draws_only_the_bell_disc() {
        let p = render(&Badge::default());
        assert_eq!(p.rgba.len(), SIZE * SIZE * 4);
        assert!(!p.rgba.chunks(4).any(|px| is_badge_red([px[0], px[1], px[2], px[3]])));
        assert_eq!(pixel(&p, 0, 0)[3], 0, "corners are transparent");
        assert_eq!(pixel(&p, 16, 16)[3], 255, "the centre is opaque");
    }

    #[test]
    fn a_count_draws_a_red_badge_top_right_with_white_digits() {
        let p = render(&Badge { count: 7, dot: false });
        assert!(is_badge_red(pixel(&p, 28, 4)));
        let white_in_badge = (16..SIZE).flat_map(|x| (0..16).map(move |y| (x, y))).filter(|&(x, y)| {
            let px = pixel(&p, x, y);
            px[0] == 255 && px[1] == 255 && px[2] == 255
        });
        assert!(white_in_badge.count() >= 10, "digit strokes are drawn");
    }

    #[test]
    fn longer_labels_make_a_wider_badge() {
        let one = red_columns(&render(&Badge { count: 7, dot: false }));
        let two = red_columns(&render(&Badge { count: 42, dot: false }));
        let capped = red_columns(&render(&Badge { count: 1000, dot: false }));
        assert!(two.start() < one.start(), "42 is wider than 7");
        assert!(capped.start() < two.start(), "99+ is wider than 42");
        assert_eq!(render(&Badge { count: 100, dot: false }), render(&Badge { count: 5000, dot: false }));
    }

    #[test]
    fn different_counts_draw_different_pixels() {
        let images: Vec<Pixels> = (1..=12).map(|count| render(&Badge { count, dot: false })).collect();
        for (i, a) in images.iter().enumerate() {
            for b in &images[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn a_dot_is_a_small_red_circle_without_digits() {
        let p = render(&Badge { count: 0, dot: true });
        assert!(is_badge_red(pixel(&p, 25, 7)));
        let cols = red_columns(&p);
        assert!(*cols.start() >= 18, "the dot stays small: {cols:?}");
    }

    #[test]
    fn the_rim_separates_badge_from_any_panel_colour() {
        let p = render(&Badge { count: 3, dot: false });
        let rim = pixel(&p, 15, 8);
        assert!(rim[3] > 0 && rim[0] > 200 && rim[1] > 200, "light rim left of the badge: {rim:?}");
    }
}
