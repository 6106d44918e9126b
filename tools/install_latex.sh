#!/usr/bin/env bash
# Install the TeX packages that latex/report.tex needs, with apt-get, when pdflatex or latexmk is
# missing. Safe to rerun: it returns at once when both are installed. Debian and Ubuntu only.
#
# Usage: bash tools/install_latex.sh   (as root, or with sudo available)
set -euo pipefail

# lmodern provides the T1-encoded Latin Modern fonts as vector fonts. Without it pdflatex falls
# back to bitmap fonts, and text copied from the PDF loses its ligatures.
packages=(texlive-latex-base texlive-latex-recommended texlive-fonts-recommended lmodern latexmk)

if command -v pdflatex >/dev/null 2>&1 && command -v latexmk >/dev/null 2>&1 \
        && kpsewhich lmodern.sty >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: apt-get not found; install pdflatex and latexmk with your system's package" >&2
    echo "       manager (Debian names: ${packages[*]})" >&2
    exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "error: installing TeX needs root; run as root or install sudo" >&2
        exit 1
    fi
    sudo_cmd=(sudo)
fi

echo "install_latex: installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"
echo "install_latex: done"
