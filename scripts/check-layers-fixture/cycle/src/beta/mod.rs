mod inner;

pub struct Thing;
