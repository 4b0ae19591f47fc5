pragma solidity ^0.4.18;

// The contract was renamed; the old constructor is now a public function.
contract PyramidFund {
    address private creator;
    uint256 public fees;

    function DynamicPyramid() public {
        creator = msg.sender; // expect: access-control
    }

    function () public payable {
        fees += msg.value / 10;
    }

    function collectFees() public {
        require(msg.sender == creator);
        creator.transfer(fees);
        fees = 0;
    }
}
