pragma solidity ^0.7.0;

contract OriginGuarded {
    address payable public owner;

    constructor() {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        require(tx.origin == owner, "owner"); // expect: access-control
        _;
    }

    receive() external payable {}

    function sweep(address payable to) external onlyOwner {
        to.transfer(address(this).balance);
    }
}
