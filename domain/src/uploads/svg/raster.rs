//! Rasterising a sanitised SVG for its variants, within a pixel and memory budget.

use super::limits::{MAX_RASTER_BYTES, MAX_RASTER_SIDE, MIN_RASTER_SIDE, Refusal};
use crate::create::provider::RgbaImage;

pub(super) fn options() -> usvg::Options<'static> {
    usvg::Options {
        fontdb: crate::create::render::fonts(),
        font_family: "Inter".to_owned(),
        // No file or network access: a reference that slipped through resolves to nothing.
        resources_dir: None,
        ..usvg::Options::default()
    }
}

/// The size a drawing of `size` is rasterised at: its own size, scaled so the longer side is
/// between 1024 and 2048 pixels.
pub(super) fn raster_size(size: usvg::Size) -> (u32, u32) {
    let (w, h) = (size.width().max(1.0), size.height().max(1.0));
    let long = w.max(h);
    let scale = long.clamp(MIN_RASTER_SIDE, MAX_RASTER_SIDE) / long;
    (
        ((w * scale).round() as u32).max(1),
        ((h * scale).round() as u32).max(1),
    )
}

/// Stage 3 of the budget: the pixmaps resvg would hold at once, at most [`MAX_RASTER_BYTES`].
pub(super) fn raster_budget(tree: &usvg::Tree, width: u32, height: u32) -> Result<(), Refusal> {
    let bytes = raster_bytes(tree, width, height);
    if bytes > MAX_RASTER_BYTES as f64 {
        return Err(Refusal::TooComplex(format!(
            "drawing it needs about {} MB of layers, more than {} MB",
            (bytes / 1e6).round(),
            MAX_RASTER_BYTES / 1_000_000
        )));
    }
    Ok(())
}

pub(super) struct Canvas {
    pub(super) scale: f32,
    pub(super) max_w: f64,
    pub(super) max_h: f64,
}

/// An upper bound on the bytes of the pixmaps resvg holds at once drawing `tree` at
/// `width` x `height`: the canvas and our copy of its pixels, plus the worst path of
/// layers, masks, clips, filter results and pattern tiles through the tree.
pub fn raster_bytes(tree: &usvg::Tree, width: u32, height: u32) -> f64 {
    let canvas = Canvas {
        scale: width as f32 / tree.size().width().max(1.0),
        max_w: f64::from(width) * 5.0,
        max_h: f64::from(height) * 5.0,
    };
    2.0 * f64::from(width) * f64::from(height) * 4.0 + group_bytes(tree.root(), &canvas)
}

pub(super) fn group_bytes(g: &usvg::Group, c: &Canvas) -> f64 {
    let mut own = 0.0;
    if g.should_isolate() {
        let r = g.abs_layer_bounding_box();
        let s = f64::from(c.scale);
        // resvg pads a layer by 2 px a side and caps it at 5 x 5 canvases.
        let w = (f64::from(r.width()) * s + 4.0).min(c.max_w);
        let h = (f64::from(r.height()) * s + 4.0).min(c.max_h);
        let layer = w.max(1.0) * h.max(1.0) * 4.0;
        // Filters run one after another; each holds its source and every primitive result.
        let primitives = g
            .filters()
            .iter()
            .map(|f| f.primitives().len() + 2)
            .max()
            .unwrap_or(0);
        own = layer * (1.0 + primitives as f64);
        let clip = g.clip_path().map_or(0.0, |cp| clip_bytes(cp, layer, c));
        let mask = g.mask().map_or(0.0, |m| mask_bytes(m, layer, c));
        own += clip.max(mask);
    }
    own + g
        .children()
        .iter()
        .map(|n| node_bytes(n, c))
        .fold(0.0, f64::max)
}

pub(super) fn clip_bytes(cp: &usvg::ClipPath, layer: f64, c: &Canvas) -> f64 {
    layer
        + group_bytes(cp.root(), c)
        + cp.clip_path()
            .map_or(0.0, |inner| clip_bytes(inner, layer, c))
}

pub(super) fn mask_bytes(m: &usvg::Mask, layer: f64, c: &Canvas) -> f64 {
    layer + group_bytes(m.root(), c) + m.mask().map_or(0.0, |inner| mask_bytes(inner, layer, c))
}

pub(super) fn node_bytes(n: &usvg::Node, c: &Canvas) -> f64 {
    match n {
        usvg::Node::Group(g) => group_bytes(g, c),
        usvg::Node::Text(t) => group_bytes(t.flattened(), c),
        usvg::Node::Image(_) => 0.0,
        usvg::Node::Path(p) => {
            let paints = [p.fill().map(|f| f.paint()), p.stroke().map(|s| s.paint())];
            paints
                .into_iter()
                .flatten()
                .map(|paint| match paint {
                    usvg::Paint::Pattern(pat) => {
                        let ts = usvg::Transform::from_scale(c.scale, c.scale)
                            .pre_concat(p.abs_transform())
                            .pre_concat(pat.transform());
                        let (sx, sy) = ts.get_scale();
                        let r = pat.rect();
                        // resvg draws one tile at its drawn size, uncapped.
                        f64::from(r.width() * sx).round().max(1.0)
                            * f64::from(r.height() * sy).round().max(1.0)
                            * 4.0
                            + group_bytes(pat.root(), c)
                    }
                    _ => 0.0,
                })
                .fold(0.0, f64::max)
        }
    }
}

/// Rasterises a sanitised document (see [`check`]) to RGBA pixels, within the same budget.
pub fn rasterize(svg: &str) -> Result<RgbaImage, String> {
    let tree = usvg::Tree::from_str(svg, &options()).map_err(|e| e.to_string())?;
    let (width, height) = raster_size(tree.size());
    raster_budget(&tree, width, height).map_err(|e| e.to_string())?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| format!("no {width}x{height} pixmap"))?;
    let scale = width as f32 / tree.size().width().max(1.0);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    // tiny-skia keeps premultiplied alpha; encoders expect straight alpha.
    let pixels = pixmap
        .pixels()
        .iter()
        .flat_map(|p| {
            let c = p.demultiply();
            [c.red(), c.green(), c.blue(), c.alpha()]
        })
        .collect();
    Ok(RgbaImage {
        width,
        height,
        pixels,
    })
}
