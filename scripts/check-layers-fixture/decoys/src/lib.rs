mod alpha;
mod beta;
mod gamma;
