// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

contract Shop {
    address public owner;
    uint256 public price = 1 gwei;
    mapping(address => uint256) public units;

    constructor() {
        owner = msg.sender;
    }

    function setPrice(uint256 p) external {
        require(msg.sender == owner, "owner");
        price = p;
    }

    function buy(uint256 maxPrice) external payable {
        require(price <= maxPrice, "price");
        units[msg.sender] += msg.value / price;
    }

    function withdraw() external {
        require(msg.sender == owner, "owner");
        payable(owner).transfer(address(this).balance);
    }
}
