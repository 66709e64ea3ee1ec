"""How tests/data/yolo/*.onnx were made (run once by hand with torch 2.13, CPU; the tests never run this).

A small YOLOv8-style detector with random weights: strided Conv+BN+SiLU stages, an upsampling neck,
per-scale box (4 x 16 bins) and class convolutions, the DFL projection, anchors computed from the
feature-map shapes, box decoding; `yolo_topk` adds a TopK post-processing tail. Exported by
torch.onnx's TorchScript exporter at opset 17 with dynamic batch, height and width, so the files carry
real exporter shape arithmetic (Shape -> Gather -> Range -> ...) and symbolic output dims.
"""

import torch
import torch.nn as nn


class ConvBN(nn.Module):
    def __init__(s, cin, cout, k=3, st=1):
        super().__init__()
        s.c = nn.Conv2d(cin, cout, k, st, k // 2, bias=False)
        s.bn = nn.BatchNorm2d(cout)
        s.act = nn.SiLU()

    def forward(s, x):
        return s.act(s.bn(s.c(x)))


class DFL(nn.Module):
    def __init__(s, c1=16):
        super().__init__()
        s.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        s.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
        s.c1 = c1

    def forward(s, x):
        b, _, a = x.shape
        return s.conv(x.view(b, 4, s.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)


def make_anchors(feats, strides):
    pts, sts = [], []
    for f, st in zip(feats, strides, strict=True):
        _, _, h, w = f.shape
        sx = torch.arange(w, dtype=f.dtype) + 0.5
        sy = torch.arange(h, dtype=f.dtype) + 0.5
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        pts.append(torch.stack((xx, yy), -1).view(-1, 2))
        sts.append(torch.full((h * w, 1), st, dtype=f.dtype))
    return torch.cat(pts).transpose(0, 1), torch.cat(sts).transpose(0, 1)


class Yolo(nn.Module):
    def __init__(s, nc=3, topk=None):
        super().__init__()
        s.b1 = nn.Sequential(ConvBN(3, 16, 3, 2), ConvBN(16, 32, 3, 2), ConvBN(32, 32, 3, 2))  # /8
        s.b2 = ConvBN(32, 64, 3, 2)  # /16
        s.b3 = ConvBN(64, 64, 3, 2)  # /32
        s.up = nn.Upsample(scale_factor=2, mode="nearest")
        s.n1 = ConvBN(128, 64)
        s.cv2 = nn.ModuleList([nn.Conv2d(c, 64, 1) for c in (32, 64, 64)])
        s.cv3 = nn.ModuleList([nn.Conv2d(c, nc, 1) for c in (32, 64, 64)])
        s.dfl = DFL(16)
        s.nc = nc
        s.topk = topk

    def forward(s, x):
        p3 = s.b1(x)
        p4 = s.b2(p3)
        p5 = s.b3(p4)
        p4 = s.n1(torch.cat([s.up(p5), p4], 1))
        feats = [p3, p4, p5]
        xs = [torch.cat((s.cv2[i](f), s.cv3[i](f)), 1) for i, f in enumerate(feats)]
        b = x.shape[0]
        xcat = torch.cat([xi.view(b, 64 + s.nc, -1) for xi in xs], 2)
        anchors, strides = make_anchors(feats, (8, 16, 32))
        box, cls = xcat.split((64, s.nc), 1)
        lt, rb = s.dfl(box).chunk(2, 1)
        x1y1 = anchors.unsqueeze(0) - lt
        x2y2 = anchors.unsqueeze(0) + rb
        dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * strides
        y = torch.cat((dbox, cls.sigmoid()), 1)
        if s.topk is None:
            return y
        yt = y.transpose(1, 2)
        boxes, scores = yt.split((4, s.nc), -1)
        best, _ = scores.max(-1)
        vals, idx = best.topk(s.topk, dim=1)
        return torch.cat([boxes.gather(1, idx.unsqueeze(-1).expand(-1, -1, 4)), vals.unsqueeze(-1)], -1)


for name, topk in (("yolo_dyn", None), ("yolo_topk", 50)):
    m = Yolo(topk=topk).eval()
    torch.onnx.export(
        m,
        torch.randn(1, 3, 320, 320),
        f"/tmp/yolo/{name}.onnx",
        input_names=["images"],
        output_names=["output0"],
        dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
print("ok")
